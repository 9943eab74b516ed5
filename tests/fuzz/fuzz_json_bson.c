/*
 * tests/fuzz/fuzz_json_bson.c — libFuzzer target for the exact JSON <->
 * BSON converter of the homers route (store/json_bson.c).
 *
 * Input layout: byte 0 picks the mode and the error buffer size.
 *   byte0 % 4 < 3: the rest is JSON text, handed to json_to_bson_value as
 *     an exact-size heap copy (no NUL; ASan catches a read past it), into
 *     a document that already holds one element; the error buffer is
 *     0, 1, 24 or 256 bytes (byte0 >> 2 & 3), exact-size too.
 *   byte0 % 4 == 3: the rest is a BSON document (its length field and last
 *     byte are made consistent), and bson_value_to_json renders each of
 *     its elements: whatever a server stored must not crash the renderer.
 *
 * Checked, abort() on violation:
 *   - a strict RFC 8259 validator written here independently agrees with
 *     the converter: text it refuses is refused ("refuses what JSON
 *     refuses and cJSON lets through"); text it accepts and the converter
 *     can store (depth <= 64, no lone surrogate, no \u0000 in a key) is
 *     stored, numbers of any length included;
 *   - a failure leaves the document as it was and says why in one of the
 *     documented forms, "near byte N" with N inside the text;
 *   - a success appends exactly one element under the key; rendering it
 *     gives valid JSON (the same validator), and storing that rendering
 *     again gives the same BSON (infinities excepted: they come back as
 *     null) and the same rendering: the round trip of the header's promise;
 *   - a rendering of any BSON is valid JSON when it is not NULL, its length
 *     is what *out_len says, and for values of the types JSON has it
 *     stores back to the same value.
 *
 * Build: tests/fuzz/run.sh (clang -fsanitize=fuzzer,address,undefined,
 * libbson and cJSON by pkg-config).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/json_bson.h"

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "fuzz_json_bson: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* ---- a strict JSON validator (RFC 8259), independent of the converter ---- */

enum verdict {
    V_INVALID,   /* not JSON */
    V_STORABLE,  /* JSON the converter promises to store */
    V_UNSTORABLE /* JSON, but refused by design: too deep, lone surrogate, NUL in a key */
};

struct val {
    const uint8_t *s;
    size_t n, i;
    int depth;
    enum verdict v; /* V_STORABLE until something unstorable is seen */
};

static void ws(struct val *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
                           p->s[p->i] == '\r'))
        p->i++;
}

static void mark(struct val *p, enum verdict v)
{
    p->v = v;
}

static int hexd(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool hex4_at(struct val *p, size_t at, unsigned *out)
{
    unsigned v = 0;

    if (p->n - at < 4)
        return false;
    for (int k = 0; k < 4; k++) {
        int d = hexd(p->s[at + k]);

        if (d < 0)
            return false;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return true;
}

/* One UTF-8 sequence at p->i (RFC 3629: no overlongs, no surrogates, at
 * most U+10FFFF); advances past it. */
static bool utf8_seq(struct val *p)
{
    const uint8_t *s = p->s + p->i;
    size_t left = p->n - p->i;
    unsigned cp, need;

    if (s[0] < 0x80) {
        p->i++;
        return true;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        need = 1, cp = s[0] & 0x1f;
    else if (s[0] >= 0xe0 && s[0] <= 0xef)
        need = 2, cp = s[0] & 0x0f;
    else if (s[0] >= 0xf0 && s[0] <= 0xf4)
        need = 3, cp = s[0] & 0x07;
    else
        return false;
    if (left < need + 1)
        return false;
    for (unsigned k = 1; k <= need; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return false;
        cp = cp << 6 | (s[k] & 0x3f);
    }
    if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return false;
    p->i += need + 1;
    return true;
}

static bool string(struct val *p, bool key)
{
    p->i++; /* the opening quote */
    while (p->i < p->n) {
        uint8_t c = p->s[p->i];

        if (c == '"') {
            p->i++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            if (!utf8_seq(p))
                return false;
            continue;
        }
        if (p->i + 1 >= p->n)
            return false;
        c = p->s[p->i + 1];
        if (c == 'u') {
            unsigned cp, lo;

            if (!hex4_at(p, p->i + 2, &cp))
                return false;
            p->i += 6;
            if (cp == 0 && key)
                mark(p, V_UNSTORABLE);
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                mark(p, V_UNSTORABLE); /* a lone low surrogate */
            } else if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p->n - p->i >= 6 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'u' &&
                    hex4_at(p, p->i + 2, &lo) && lo >= 0xdc00 && lo <= 0xdfff)
                    p->i += 6;
                else
                    mark(p, V_UNSTORABLE); /* a lone high surrogate */
            }
            continue;
        }
        if (!strchr("\"\\/bfnrt", c) || c == 0)
            return false;
        p->i += 2;
    }
    return false;
}

static bool digits(struct val *p)
{
    size_t start = p->i;

    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > start;
}

static bool number(struct val *p)
{
    if (p->s[p->i] == '-')
        p->i++;
    if (p->i < p->n && p->s[p->i] == '0')
        p->i++;
    else if (!digits(p))
        return false;
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!digits(p))
            return false;
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (!digits(p))
            return false;
    }
    return true;
}

static bool value(struct val *p);

static bool container(struct val *p, uint8_t close, bool object)
{
    if (++p->depth > JSON_BSON_MAX_DEPTH)
        mark(p, V_UNSTORABLE);
    if (p->depth > 10000)
        return false; /* the validator's own stack: refuse, as the converter does */
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return true;
    }
    for (;;) {
        if (object) {
            if (p->i >= p->n || p->s[p->i] != '"' || !string(p, true))
                return false;
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return false;
            p->i++;
            ws(p);
        }
        if (!value(p))
            return false;
        ws(p);
        if (p->i >= p->n)
            return false;
        if (p->s[p->i] == close) {
            p->i++;
            p->depth--;
            return true;
        }
        if (p->s[p->i] != ',')
            return false;
        p->i++;
        ws(p);
    }
}

static bool literal(struct val *p, const char *word)
{
    size_t k = strlen(word);

    if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0)
        return false;
    p->i += k;
    return true;
}

static bool value(struct val *p)
{
    if (p->i >= p->n)
        return false;
    switch (p->s[p->i]) {
    case '{':
        return container(p, '}', true);
    case '[':
        return container(p, ']', false);
    case '"':
        return string(p, false);
    case 't':
        return literal(p, "true");
    case 'f':
        return literal(p, "false");
    case 'n':
        return literal(p, "null");
    default:
        if (p->s[p->i] == '-' || (p->s[p->i] >= '0' && p->s[p->i] <= '9'))
            return number(p);
        return false;
    }
}

static enum verdict validate(const uint8_t *s, size_t n, bool allow_bom)
{
    struct val p = {.s = s, .n = n, .v = V_STORABLE};

    /* RFC 8259 8.1: a parser MAY ignore a byte order mark (cJSON does) */
    if (allow_bom && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
        p.i = 3;
    ws(&p);
    if (!value(&p))
        return V_INVALID;
    ws(&p);
    return p.i == n ? p.v : V_INVALID;
}

/* ---- comparing BSON values --------------------------------------------- */

/* true: an int32 and an int64 of the same value are the same (a BSON
 * int64 written by someone else comes back as int32 when it fits). */
static bool loose_ints;

static bool same_value(const bson_iter_t *a, const bson_iter_t *b);

static bool same_children(const bson_iter_t *a, const bson_iter_t *b, bool keys)
{
    bson_iter_t ca, cb;

    CHECK(bson_iter_recurse(a, &ca) && bson_iter_recurse(b, &cb));
    for (;;) {
        bool na = bson_iter_next(&ca), nb = bson_iter_next(&cb);

        if (na != nb)
            return false;
        if (!na)
            return true;
        if (keys && (bson_iter_key_len(&ca) != bson_iter_key_len(&cb) ||
                     memcmp(bson_iter_key(&ca), bson_iter_key(&cb), bson_iter_key_len(&ca))))
            return false;
        if (!same_value(&ca, &cb))
            return false;
    }
}

/* Equal as JSON values stored by the converter: a non-finite double
 * stands for null (that is how it renders). */
static bool same_value(const bson_iter_t *a, const bson_iter_t *b)
{
    bson_type_t ta = bson_iter_type(a), tb = bson_iter_type(b);
    uint32_t la, lb;
    const char *sa, *sb;

    if (ta == BSON_TYPE_DOUBLE && !isfinite(bson_iter_double(a)))
        ta = BSON_TYPE_NULL;
    if (tb == BSON_TYPE_DOUBLE && !isfinite(bson_iter_double(b)))
        tb = BSON_TYPE_NULL;
    if (loose_ints && (ta == BSON_TYPE_INT32 || ta == BSON_TYPE_INT64) &&
        (tb == BSON_TYPE_INT32 || tb == BSON_TYPE_INT64))
        return bson_iter_as_int64(a) == bson_iter_as_int64(b);
    if (ta != tb)
        return false;
    switch (ta) {
    case BSON_TYPE_DOCUMENT:
        return same_children(a, b, true);
    case BSON_TYPE_ARRAY:
        return same_children(a, b, false);
    case BSON_TYPE_UTF8:
        sa = bson_iter_utf8(a, &la);
        sb = bson_iter_utf8(b, &lb);
        return la == lb && memcmp(sa, sb, la) == 0;
    case BSON_TYPE_INT32:
        return bson_iter_int32(a) == bson_iter_int32(b);
    case BSON_TYPE_INT64:
        return bson_iter_int64(a) == bson_iter_int64(b);
    case BSON_TYPE_DOUBLE: {
        double da = bson_iter_double(a), db = bson_iter_double(b);

        return memcmp(&da, &db, sizeof da) == 0; /* -0.0 keeps its sign */
    }
    case BSON_TYPE_BOOL:
        return bson_iter_bool(a) == bson_iter_bool(b);
    case BSON_TYPE_NULL:
        return true;
    default:
        return false;
    }
}

/* Only the types a JSON text can be stored as, well-formed, keys valid
 * UTF-8 without NUL. */
static bool json_native(const bson_iter_t *it, int depth)
{
    bson_iter_t c;
    uint32_t n;
    const char *s;

    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        if (depth >= JSON_BSON_MAX_DEPTH || !bson_iter_recurse(it, &c))
            return false;
        while (bson_iter_next(&c)) {
            if (!bson_utf8_validate(bson_iter_key(&c), bson_iter_key_len(&c), false))
                return false;
            if (!json_native(&c, depth + 1))
                return false;
        }
        return c.err_off == 0;
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(it, &n);
        return s && bson_utf8_validate(s, n, true);
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_BOOL:
    case BSON_TYPE_NULL:
        return true;
    default:
        return false;
    }
}

/* ---- the checks ----------------------------------------------------------- */

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* The documented error forms; N (when there is one) inside the text. */
static void check_error(const char *err, size_t len)
{
    static const char *const with_pos[] = {
        "not JSON: error near byte ", "not JSON: invalid UTF-8 near byte ",
        "JSON object key with \\u0000 near byte "};

    for (size_t k = 0; k < 3; k++) {
        if (has_prefix(err, with_pos[k])) {
            char *end;
            unsigned long long at = strtoull(err + strlen(with_pos[k]), &end, 10);

            CHECK(end != err + strlen(with_pos[k]));
            CHECK(at <= len);
            if (k == 2)
                CHECK(!strcmp(end, " cannot be stored"));
            else
                CHECK(*end == '\0');
            return;
        }
    }
    CHECK(!strcmp(err, "JSON nested deeper than 64 levels") ||
          !strcmp(err, "JSON too large for BSON") || !strcmp(err, "out of memory"));
}

/* Renders the value at it; valid JSON or NULL; the length as said. */
static char *render(const bson_iter_t *it, size_t *len)
{
    char *out = bson_value_to_json(it, len);

    if (out) {
        CHECK(strlen(out) == *len);
        CHECK(validate((const uint8_t *)out, *len, false) != V_INVALID);
    }
    return out;
}

/* Stores text under "v" and hands back the element. */
static bool store(const char *text, size_t len, bson_t *doc, bson_iter_t *it)
{
    char err[256];

    bson_init(doc);
    if (json_to_bson_value(text, len, doc, "v", err, sizeof err) != 0)
        return false;
    CHECK(bson_iter_init_find(it, doc, "v"));
    return true;
}

static void json_mode(const uint8_t *data, size_t size, size_t err_size)
{
    static const char key[] = "content";
    char *text = malloc(size ? size : 1), *err = err_size ? malloc(err_size) : NULL;
    enum verdict v = validate(data, size, true);
    bson_t doc, before;
    bson_iter_t it;
    int rc, count = 0;

    CHECK(text != NULL && (err_size == 0 || err != NULL));
    memcpy(text, data, size);
    if (err)
        memset(err, 0x5a, err_size);
    bson_init(&doc);
    BSON_APPEND_UTF8(&doc, "name", "homer");
    bson_copy_to(&doc, &before);

    rc = json_to_bson_value(text, size, &doc, key, err, err_size);
    CHECK(rc == 0 || rc == -1);
    if (err)
        CHECK(memchr(err, '\0', err_size) != NULL);

    if (rc != 0) {
        char why[256];
        bson_t scratch;

        CHECK(bson_equal(&doc, &before));
        /* the reason, whatever the size of the caller's buffer */
        bson_init(&scratch);
        CHECK(json_to_bson_value(text, size, &scratch, key, why, sizeof why) == -1);
        bson_destroy(&scratch);
        check_error(why, size);
        if (err_size > 0)
            CHECK(strncmp(err, why, err_size - 1) == 0); /* the same, cut to fit */
        /* storable JSON is refused only when it does not fit */
        if (v == V_STORABLE)
            CHECK(!strcmp(why, "JSON too large for BSON") || !strcmp(why, "out of memory"));
    } else {
        char *out1, *out2;
        size_t len1, len2;
        bson_t again, third;
        bson_iter_t it2, it3;

        CHECK(v != V_INVALID);      /* accepted only JSON */
        CHECK(v != V_UNSTORABLE);   /* and not what it says it refuses */
        if (err)
            CHECK(err[0] == '\0');
        CHECK(bson_validate(&doc, BSON_VALIDATE_NONE, NULL));
        CHECK(bson_iter_init(&it, &doc));
        while (bson_iter_next(&it))
            count++;
        CHECK(count == 2);
        CHECK(bson_iter_init_find(&it, &doc, key));
        CHECK(json_native(&it, 0));

        out1 = render(&it, &len1);
        CHECK(out1 != NULL);
        CHECK(store(out1, len1, &again, &it2));
        CHECK(same_value(&it, &it2));
        out2 = render(&it2, &len2);
        CHECK(out2 != NULL && len1 == len2 && memcmp(out1, out2, len1) == 0);
        /* and once more from the rendering: a fixed point */
        CHECK(store(out2, len2, &third, &it3));
        CHECK(same_value(&it2, &it3));
        bson_destroy(&third);
        bson_destroy(&again);
        free(out2);
        free(out1);
    }
    bson_destroy(&before);
    bson_destroy(&doc);
    free(err);
    free(text);
}

static void bson_mode(const uint8_t *data, size_t size)
{
    uint8_t *copy;
    bson_t b;
    bson_iter_t it;
    uint32_t n;

    if (size < 5 || size > (1u << 24))
        return;
    copy = malloc(size);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    n = (uint32_t)size;
    memcpy(copy, &n, 4); /* little-endian hosts (BSON's order) */
    copy[size - 1] = 0;
    if (bson_init_static(&b, copy, size) && bson_iter_init(&it, &b)) {
        while (bson_iter_next(&it)) {
            size_t len = 0;
            char *out = render(&it, &len);

            if (out && json_native(&it, 0)) {
                bson_t again;
                bson_iter_t it2;

                CHECK(store(out, len, &again, &it2));
                CHECK(same_value(&it, &it2));
                bson_destroy(&again);
            }
            free(out);
        }
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t err_sizes[4] = {0, 1, 24, 256};

    if (size < 1)
        return 0;
    loose_ints = data[0] % 4 == 3;
    if (loose_ints)
        bson_mode(data + 1, size - 1);
    else
        json_mode(data + 1, size - 1, err_sizes[data[0] >> 2 & 3]);
    return 0;
}
