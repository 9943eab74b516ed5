/*
 * store/json_bson.h — JSON text <-> BSON values, for the MongoDB shim.
 *
 * Pure functions: no I/O, no global state of their own; safe to call from
 * worker threads.  The promise is that a JSON value stored with
 * json_to_bson_value() and read back with bson_value_to_json() compares
 * EQUAL to what was posted when both are parsed as JSON values:
 *
 *   - objects keep their key order (duplicate keys are kept as cJSON sees
 *     them: every occurrence, in order); arrays become BSON arrays;
 *   - strings are decoded from the original text by this module, so
 *     "\u0000" inside a string survives (BSON strings carry a length);
 *     every string must be valid UTF-8 after decoding (else an error);
 *   - a number without '.', 'e' or 'E' is an integer: stored as int32 when
 *     it fits, else int64 when it fits — read exactly from the text, never
 *     through a double (9007199254740993 comes back as written); a larger
 *     integer, or a number with fraction/exponent, is stored as a double;
 *   - doubles are printed with the fewest digits (15..17) that parse back to
 *     the same double, with ".0" added to integral values so they stay
 *     doubles ("1.0" -> 1.0 -> "1.0", "-0.0" keeps its sign); non-finite
 *     doubles (1e999 overflows to infinity) are printed as null;
 *   - true, false, null as such.
 *
 * The parser is cJSON (for structure) plus a strict scan of the original
 * text: it refuses what JSON refuses and cJSON lets through (leading zeros
 * "01", "1.", raw control characters in strings and between tokens),
 * trailing garbage after the value, and nesting deeper than
 * JSON_BSON_MAX_DEPTH.  One UTF-8 byte order mark before the value is
 * ignored (RFC 8259 8.1 allows it).
 */
#ifndef SPRINGFIELD_STORE_JSON_BSON_H
#define SPRINGFIELD_STORE_JSON_BSON_H

#include <stddef.h>

#include <bson/bson.h>

/* Objects/arrays nested deeper than this are refused on input. */
#define JSON_BSON_MAX_DEPTH 64

/* Parses the JSON text json[0..len) (need not be NUL-terminated; any JSON
 * value: object, array, string, number, true/false/null) and on success
 * appends it to doc under key and returns 0.  On failure returns -1, leaves
 * doc unchanged, and writes a message into err (when err_size > 0):
 *   "not JSON: error near byte N"           (N = 0-based offset)
 *   "not JSON: invalid UTF-8 near byte N"
 *   "JSON nested deeper than 64 levels"
 *   "JSON object key with \u0000 near byte N cannot be stored"
 *   "JSON too large for BSON"
 * Reentrant: the error position comes from cJSON's return_parse_end, not
 * from the global cJSON_GetErrorPtr(). */
int json_to_bson_value(const char *json, size_t len, bson_t *doc, const char *key,
                       char *err, size_t err_size);

/* Renders the BSON value at iter as compact JSON text, NUL-terminated,
 * malloc'd (free with free()); *out_len gets its length without the NUL.
 * BSON types JSON cannot express (ObjectId, dates, binary, decimal128 ...)
 * come out as relaxed Extended JSON ({"$oid": ...}).  NULL on failure:
 * out of memory, a corrupt document, invalid UTF-8, or nesting deeper than
 * JSON_BSON_MAX_RENDER_DEPTH. */
#define JSON_BSON_MAX_RENDER_DEPTH 128
char *bson_value_to_json(const bson_iter_t *iter, size_t *out_len);

#endif
