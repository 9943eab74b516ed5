/*
 * store/s3_error.h — reading S3's error documents, without I/O.
 *
 * S3 answers a refused request with a small XML document:
 *   <Error><Code>NoSuchKey</Code><Message>The specified key ...</Message>
 *   ...</Error>
 * store/s3.c takes the Code and the Message out of it to choose the store
 * result and to say what happened.  Split out of s3.c (unchanged) so that
 * it can be fuzzed on its own (tests/fuzz/fuzz_s3_error.c): whatever a
 * server sends goes through here.
 */
#ifndef SPRINGFIELD_STORE_S3_ERROR_H
#define SPRINGFIELD_STORE_S3_ERROR_H

#include <stddef.h>

/*
 * Copies the text between the first "<tag>" of doc[0..len) and the first
 * "</tag>" after it into out, cut to outsz - 1 bytes, NUL-terminated, with
 * control characters (below 0x20, and 0x7f) turned into spaces so the text
 * fits in one log line.  No such element (or doc NULL or empty): out is "".
 * The document may hold anything, NULs included; no entity is decoded.
 * outsz must be at least 1; tag at most 28 bytes (longer ones are cut and
 * then never match whole).
 */
void s3_xml_text(const char *doc, size_t len, const char *tag, char *out, size_t outsz);

#endif
