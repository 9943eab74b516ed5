/*
 * tests/fuzz/fuzz_s3_error.c — libFuzzer target for the S3 error-document
 * reader, s3_xml_text (store/s3_error.c), the one piece of the S3 shim
 * that reads what a server sends back on a refusal.
 *
 * Input layout: byte 0 picks the tag (bits 0-2: Code, Message, Key,
 * RequestId, BucketName, HostId, Resource, or — for 7 — the next bytes up
 * to the first '>' or '/', at most 28), byte 1 the output size (1..256;
 * 0: the sizes store/s3.c uses, 64 for Code and 256 for Message); the rest
 * is the document, NULs and all.  The document and the output buffer are
 * exact-size heap copies, so ASan catches a read or write past either.
 * Checked, abort() on violation:
 *   - the result is NUL-terminated inside the buffer, has no control
 *     character, and equals what a reference written here independently
 *     (first "<tag>", first "</tag>" after it, cut, cleaned) gives;
 *   - a document without '<' gives "".
 *
 * Build: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/s3_error.h"

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "fuzz_s3_error: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                        \
        }                                                                                   \
    } while (0)

/* Where needle first occurs in hay[0..n), or NULL: a plain byte loop. */
static const uint8_t *find(const uint8_t *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

static void reference(const uint8_t *doc, size_t len, const char *tag, char *out, size_t outsz)
{
    char open[40], close[40];
    const uint8_t *a, *b;
    size_t n, i;

    out[0] = '\0';
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    a = find(doc, len, open);
    if (!a)
        return;
    a += strlen(open);
    b = find(a, len - (size_t)(a - doc), close);
    if (!b)
        return;
    n = (size_t)(b - a);
    if (n > outsz - 1)
        n = outsz - 1;
    for (i = 0; i < n && a[i] != 0; i++)
        out[i] = a[i] < 0x20 || a[i] == 0x7f ? ' ' : (char)a[i];
    out[i] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const tags[7] = {"Code",       "Message", "Key",     "RequestId",
                                        "BucketName", "HostId",  "Resource"};
    char tag[29], *out, *ref;
    const uint8_t *doc;
    size_t len, outsz, i;
    char *copy;

    if (size < 2)
        return 0;
    doc = data + 2;
    len = size - 2;
    if ((data[0] & 7) < 7) {
        strcpy(tag, tags[data[0] & 7]);
    } else {
        size_t t = 0;

        while (t < 28 && t < len && doc[t] != '>' && doc[t] != '/' && doc[t] != 0)
            t++;
        memcpy(tag, doc, t);
        tag[t] = '\0';
        doc += t;
        len -= t;
    }
    outsz = data[1] ? data[1] : (data[0] & 7) == 1 ? 256 : 64;

    copy = malloc(len ? len : 1);
    memcpy(copy, doc, len);
    out = malloc(outsz);
    ref = malloc(outsz);
    CHECK(copy && out && ref);
    memset(out, 0xa5, outsz);

    s3_xml_text(len ? copy : NULL, len, tag, out, outsz);

    CHECK(memchr(out, '\0', outsz) != NULL);
    for (i = 0; out[i]; i++)
        CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
    reference(doc, len, tag, ref, outsz);
    CHECK(strcmp(out, ref) == 0);

    if (!find(doc, len, "<"))
        CHECK(out[0] == '\0');

    free(ref);
    free(out);
    free(copy);
    return 0;
}
