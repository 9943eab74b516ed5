/*
 * store/json_bson.c — JSON text <-> BSON values (see json_bson.h).
 *
 * Parsing is done in two passes over the same text.  cJSON checks the
 * grammar and gives the tree; but cJSON keeps numbers only as doubles and
 * strings only as C strings (losing 2^53+1 and "\u0000").  So while walking
 * the tree in document order, a small cursor over the original text hands
 * out the raw token of every string (keys included) and number, in the same
 * order — a pre-order walk of the tree visits tokens in text order — and
 * the values are taken from those tokens, exactly.
 */
#include "store/json_bson.h"

#include "common/buf.h"
#include "common/utf8.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parsing ---------------------------------------------------------- */

struct conv {
    const char *s;  /* the JSON text */
    size_t end;     /* where cJSON stopped: tokens live in [0, end) */
    size_t pos;     /* cursor: next token starts at or after pos */
    struct buf key; /* decoded object key (len stays 0: a scratch area) */
    struct buf val; /* decoded string value (likewise) */
    char *err;
    size_t err_size;
};

static int fail(struct conv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct conv *c, const char *fmt, ...)
{
    va_list ap;

    if (c->err && c->err_size > 0) {
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_size, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

enum token_kind { TOKEN_STRING, TOKEN_NUMBER };

/* Finds the next string or number token at or after c->pos.  For a string,
 * [*start, *stop) is the text between the quotes.  Raw control characters
 * inside strings (cJSON accepts them, JSON does not) are refused here. */
/* Whether s[0..n) is UTF-8, NULs allowed (a decoded \u0000 is one).  Not
 * bson_utf8_validate: with NULs allowed it also takes C0 80, the overlong
 * form of NUL ("modified UTF-8"), which is not UTF-8. */
static bool is_utf8(const char *s, size_t n)
{
    return utf8_chars(s, n) >= 0;
}

static int next_token(struct conv *c, enum token_kind want, size_t *start, size_t *stop)
{
    const char *s = c->s;
    size_t i = c->pos;

    while (i < c->end && s[i] != '"' && s[i] != '-' && !is_digit(s[i]))
        i++;
    if (i >= c->end)
        return fail(c, "not JSON: error near byte %zu", i);
    if (s[i] == '"') {
        if (want != TOKEN_STRING)
            return fail(c, "not JSON: error near byte %zu", i);
        *start = ++i;
        while (i < c->end && s[i] != '"') {
            if ((unsigned char)s[i] < 0x20)
                return fail(c, "not JSON: error near byte %zu", i);
            i += s[i] == '\\' ? 2 : 1;
        }
        if (i >= c->end)
            return fail(c, "not JSON: error near byte %zu", *start - 1);
        *stop = i;
        c->pos = i + 1;
        return 0;
    }
    if (want != TOKEN_NUMBER)
        return fail(c, "not JSON: error near byte %zu", i);
    *start = i;
    while (i < c->end && (is_digit(s[i]) || s[i] == '-' || s[i] == '+' || s[i] == '.' ||
                          s[i] == 'e' || s[i] == 'E'))
        i++;
    *stop = i;
    c->pos = i;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;

    for (int k = 0; k < 4; k++) {
        char ch = p[k];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the string token [start, stop) into b (NUL-terminated, *out_len
 * without the NUL) and checks that the result is valid UTF-8.  A decoded
 * string is never longer than its escaped form. */
static int decode_string(struct conv *c, size_t start, size_t stop, struct buf *b,
                         size_t *out_len)
{
    const char *s = c->s;
    size_t i = start, n = 0;
    char *p;

    if (buf_reserve(b, stop - start + 1) < 0)
        return fail(c, "out of memory");
    p = (char *)b->data;
    while (i < stop) {
        unsigned cp, lo;

        if (s[i] != '\\') {
            p[n++] = s[i++];
            continue;
        }
        if (i + 1 >= stop)
            return fail(c, "not JSON: error near byte %zu", i);
        switch (s[i + 1]) {
        case '"': p[n++] = '"'; break;
        case '\\': p[n++] = '\\'; break;
        case '/': p[n++] = '/'; break;
        case 'b': p[n++] = '\b'; break;
        case 'f': p[n++] = '\f'; break;
        case 'n': p[n++] = '\n'; break;
        case 'r': p[n++] = '\r'; break;
        case 't': p[n++] = '\t'; break;
        case 'u':
            if (i + 6 > stop || hex4(s + i + 2, &cp) < 0)
                return fail(c, "not JSON: error near byte %zu", i);
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return fail(c, "not JSON: error near byte %zu", i);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* a high surrogate must be followed by \u + a low one */
                if (i + 12 > stop || s[i + 6] != '\\' || s[i + 7] != 'u' ||
                    hex4(s + i + 8, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return fail(c, "not JSON: error near byte %zu", i);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            n += put_utf8(p + n, cp);
            i += 6;
            continue;
        default:
            return fail(c, "not JSON: error near byte %zu", i);
        }
        i += 2;
    }
    p[n] = '\0';
    if (!is_utf8(p, n))
        return fail(c, "not JSON: invalid UTF-8 near byte %zu", start - 1);
    *out_len = n;
    return 0;
}

/* Copies a number token into a NUL-terminated buffer for strtod, with the
 * locale's decimal point (strtod follows LC_NUMERIC, JSON does not). */
static double token_to_double(const char *tok, size_t n, int *ok)
{
    char small[64], *p = small;
    const char *dp = localeconv()->decimal_point;
    double d;

    if (n + 1 > sizeof small) {
        p = malloc(n + 1);
        if (!p) {
            *ok = 0;
            return 0;
        }
    }
    for (size_t k = 0; k < n; k++)
        p[k] = (tok[k] == '.' && dp && dp[0] && !dp[1]) ? dp[0] : tok[k];
    p[n] = '\0';
    d = strtod(p, NULL); /* ERANGE: +-HUGE_VAL or a denormal/zero, kept */
    if (p != small)
        free(p);
    *ok = 1;
    return d;
}

static int append_number(struct conv *c, bson_t *doc, const char *key, int klen, size_t start,
                         size_t stop)
{
    const char *t = c->s + start;
    size_t n = stop - start, i = 0;
    int neg = 0, integral = 1, ok;
    bool appended;

    /* strict JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    if (t[i] == '-') {
        neg = 1;
        i++;
    }
    if (i < n && t[i] == '0')
        i++;
    else if (i < n && is_digit(t[i]))
        while (i < n && is_digit(t[i]))
            i++;
    else
        return fail(c, "not JSON: error near byte %zu", start + i);
    if (i < n && t[i] == '.') {
        integral = 0;
        if (++i >= n || !is_digit(t[i]))
            return fail(c, "not JSON: error near byte %zu", start + i);
        while (i < n && is_digit(t[i]))
            i++;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        integral = 0;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        if (i >= n || !is_digit(t[i]))
            return fail(c, "not JSON: error near byte %zu", start + i);
        while (i < n && is_digit(t[i]))
            i++;
    }
    if (i != n)
        return fail(c, "not JSON: error near byte %zu", start + i);

    if (integral) {
        /* exact: magnitude in uint64, then range checks; never via double */
        uint64_t mag = 0;
        int overflow = 0;

        for (i = (size_t)neg; i < n; i++) {
            unsigned dgt = (unsigned)(t[i] - '0');
            if (mag > (UINT64_MAX - dgt) / 10) {
                overflow = 1;
                break;
            }
            mag = mag * 10 + dgt;
        }
        if (!overflow && (neg ? mag <= (uint64_t)INT64_MAX + 1 : mag <= (uint64_t)INT64_MAX)) {
            int64_t v = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag)
                            : (int64_t)mag;
            if (v >= INT32_MIN && v <= INT32_MAX)
                appended = bson_append_int32(doc, key, klen, (int32_t)v);
            else
                appended = bson_append_int64(doc, key, klen, v);
            return appended ? 0 : fail(c, "JSON too large for BSON");
        }
        /* beyond int64: a double, as JSON parsers commonly do */
    }
    double d = token_to_double(t, n, &ok);
    if (!ok)
        return fail(c, "out of memory");
    return bson_append_double(doc, key, klen, d) ? 0 : fail(c, "JSON too large for BSON");
}

static int append_item(struct conv *c, bson_t *doc, const char *key, int klen,
                       const cJSON *item, int depth);

static int append_children(struct conv *c, bson_t *child, const cJSON *item, int depth)
{
    const cJSON *it;
    uint32_t index = 0;

    for (it = item->child; it; it = it->next) {
        if (cJSON_IsObject(item)) {
            size_t start, stop, klen;

            if (next_token(c, TOKEN_STRING, &start, &stop) < 0 ||
                decode_string(c, start, stop, &c->key, &klen) < 0)
                return -1;
            if (memchr((const char *)c->key.data, '\0', klen))
                return fail(c, "JSON object key with \\u0000 near byte %zu cannot be stored",
                            start - 1);
            if (klen > INT_MAX)
                return fail(c, "JSON too large for BSON");
            if (append_item(c, child, (const char *)c->key.data, (int)klen, it, depth) < 0)
                return -1;
        } else {
            char numbuf[16];
            const char *ikey;
            size_t iklen = bson_uint32_to_string(index++, &ikey, numbuf, sizeof numbuf);

            if (append_item(c, child, ikey, (int)iklen, it, depth) < 0)
                return -1;
        }
    }
    return 0;
}

static int append_item(struct conv *c, bson_t *doc, const char *key, int klen,
                       const cJSON *item, int depth)
{
    size_t start, stop, n;
    bson_t child;

    if (cJSON_IsObject(item) || cJSON_IsArray(item)) {
        bool began;

        if (depth + 1 > JSON_BSON_MAX_DEPTH)
            return fail(c, "JSON nested deeper than %d levels", JSON_BSON_MAX_DEPTH);
        began = cJSON_IsObject(item) ? bson_append_document_begin(doc, key, klen, &child)
                                     : bson_append_array_begin(doc, key, klen, &child);
        if (!began)
            return fail(c, "JSON too large for BSON");
        /* key may point into c->key, reused by the children: it has been
         * copied into doc by now */
        if (append_children(c, &child, item, depth + 1) < 0) {
            /* close it so doc stays consistent; the caller drops doc's
             * partial content (see json_to_bson_value) */
            if (cJSON_IsObject(item))
                bson_append_document_end(doc, &child);
            else
                bson_append_array_end(doc, &child);
            return -1;
        }
        if (!(cJSON_IsObject(item) ? bson_append_document_end(doc, &child)
                                   : bson_append_array_end(doc, &child)))
            return fail(c, "JSON too large for BSON");
        return 0;
    }
    if (cJSON_IsString(item)) {
        if (next_token(c, TOKEN_STRING, &start, &stop) < 0 ||
            decode_string(c, start, stop, &c->val, &n) < 0)
            return -1;
        if (n > INT_MAX || !bson_append_utf8(doc, key, klen, (const char *)c->val.data, (int)n))
            return fail(c, "JSON too large for BSON");
        return 0;
    }
    if (cJSON_IsNumber(item)) {
        if (next_token(c, TOKEN_NUMBER, &start, &stop) < 0)
            return -1;
        return append_number(c, doc, key, klen, start, stop);
    }
    if (cJSON_IsBool(item))
        return bson_append_bool(doc, key, klen, cJSON_IsTrue(item)) ? 0
                                                                     : fail(c, "JSON too large for BSON");
    if (cJSON_IsNull(item))
        return bson_append_null(doc, key, klen) ? 0 : fail(c, "JSON too large for BSON");
    return fail(c, "not JSON: error near byte %zu", c->pos);
}

/* Refuses deep nesting before cJSON recurses into it (cJSON's own limit is
 * 1000 levels, and its message would not say why), and control characters
 * outside strings: cJSON skips every byte up to 0x20 as whitespace, JSON
 * only space, tab, LF and CR.  (Inside strings next_token refuses them.) */
static int check_depth(struct conv *c, size_t len)
{
    const char *s = c->s;
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        switch (s[i]) {
        case '"':
            for (i++; i < len && s[i] != '"'; i++)
                if (s[i] == '\\')
                    i++;
            break;
        case '[':
        case '{':
            if (++depth > JSON_BSON_MAX_DEPTH)
                return fail(c, "JSON nested deeper than %d levels", JSON_BSON_MAX_DEPTH);
            break;
        case ']':
        case '}':
            depth--;
            break;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            break;
        default:
            if ((unsigned char)s[i] < 0x20)
                return fail(c, "not JSON: error near byte %zu", i);
            break;
        }
    }
    return 0;
}

int json_to_bson_value(const char *json, size_t len, bson_t *doc, const char *key,
                       char *err, size_t err_size)
{
    struct conv c = {.s = json, .err = err, .err_size = err_size};
    const char *end = NULL;
    size_t bom = 0;
    cJSON *root;
    bson_t tmp;
    int rc;

    if (err && err_size > 0)
        err[0] = '\0';
    if (!json || !doc || !key)
        return fail(&c, "not JSON: error near byte 0");
    if (check_depth(&c, len) < 0)
        return -1;
    /* One UTF-8 byte order mark may open the text (RFC 8259 8.1 lets a
     * parser ignore it).  cJSON skips one only when two or more bytes
     * follow it, so it is skipped here, always; cJSON must not skip a
     * second one. */
    if (len >= 3 && !memcmp(json, "\xef\xbb\xbf", 3)) {
        bom = 3;
        if (len >= 6 && !memcmp(json + 3, "\xef\xbb\xbf", 3))
            return fail(&c, "not JSON: error near byte 3");
    }
    root = cJSON_ParseWithLengthOpts(json + bom, len - bom, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return fail(&c, "not JSON: error near byte %zu", at);
    }
    c.end = (size_t)(end - json);
    /* cJSON stops after the value; only whitespace may follow */
    for (size_t i = c.end; i < len; i++) {
        char ch = json[i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r') {
            cJSON_Delete(root);
            return fail(&c, "not JSON: error near byte %zu", i);
        }
    }
    /* Build into a scratch document so doc is untouched on failure. */
    bson_init(&tmp);
    rc = append_item(&c, &tmp, key, -1, root, 0);
    cJSON_Delete(root);
    buf_free(&c.key);
    buf_free(&c.val);
    if (rc == 0) {
        bson_iter_t it;
        if (!bson_iter_init(&it, &tmp) || !bson_iter_next(&it) ||
            !bson_append_iter(doc, key, -1, &it))
            rc = fail(&c, "JSON too large for BSON");
    }
    bson_destroy(&tmp);
    return rc;
}

/* ---- rendering -------------------------------------------------------- */

/* The JSON text being rendered, kept NUL-terminated; once an append
 * fails, failed is set and the rest is skipped. */
struct out {
    struct buf b;
    int failed;
};

static void out_put(struct out *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (n == SIZE_MAX || buf_reserve(&o->b, n + 1) < 0) {
        o->failed = 1;
        return;
    }
    memcpy(o->b.data + o->b.len, s, n);
    o->b.len += n;
    o->b.data[o->b.len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* A JSON string literal; s must be valid UTF-8 (NULs allowed). */
static void out_string(struct out *o, const char *s, size_t n)
{
    size_t run = 0;

    if (!is_utf8(s, n)) {
        o->failed = 1;
        return;
    }
    out_put(o, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char hex[8];

        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        out_put(o, s + run, i - run);
        run = i + 1;
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            snprintf(hex, sizeof hex, "\\u%04x", ch);
            esc = hex;
        }
        out_str(o, esc);
    }
    out_put(o, s + run, n - run);
    out_put(o, "\"", 1);
}

/* Shortest of %.15g..%.17g that reads back as d; "x.0" for integral
 * values so they stay doubles; null for NaN and infinities. */
static void out_double(struct out *o, double d)
{
    char buf[40];
    const char *dp = localeconv()->decimal_point;
    int has_mark = 0;

    if (!isfinite(d)) {
        out_str(o, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* back to JSON's '.', whatever LC_NUMERIC says */
    if (dp && dp[0] && !dp[1] && dp[0] != '.') {
        char *p = strchr(buf, dp[0]);
        if (p)
            *p = '.';
    }
    has_mark = strpbrk(buf, ".eE") != NULL;
    out_str(o, buf);
    if (!has_mark)
        out_str(o, ".0");
}

/* Anything JSON has no word for: relaxed Extended JSON from libbson.  It
 * renders a whole document, so wrap the value as {"v": value} and cut. */
static void out_extended(struct out *o, const bson_iter_t *iter)
{
    static const char prefix[] = "{ \"v\" : ", suffix[] = " }";
    bson_t tmp;
    char *s = NULL;
    size_t n = 0;

    bson_init(&tmp);
    if (bson_append_iter(&tmp, "v", 1, iter))
        s = bson_as_relaxed_extended_json(&tmp, &n);
    bson_destroy(&tmp);
    if (!s || n < sizeof prefix - 1 + sizeof suffix - 1 ||
        memcmp(s, prefix, sizeof prefix - 1) != 0 ||
        memcmp(s + n - (sizeof suffix - 1), suffix, sizeof suffix - 1) != 0) {
        o->failed = 1;
    } else {
        out_put(o, s + sizeof prefix - 1, n - (sizeof prefix - 1) - (sizeof suffix - 1));
    }
    bson_free(s);
}

static void out_value(struct out *o, const bson_iter_t *iter, int depth);

static void out_container(struct out *o, const bson_iter_t *iter, int depth, int is_doc)
{
    bson_iter_t child;
    int first = 1;

    if (depth >= JSON_BSON_MAX_RENDER_DEPTH || !bson_iter_recurse(iter, &child)) {
        o->failed = 1;
        return;
    }
    out_put(o, is_doc ? "{" : "[", 1);
    while (!o->failed && bson_iter_next(&child)) {
        if (!first)
            out_put(o, ",", 1);
        first = 0;
        if (is_doc) {
            out_string(o, bson_iter_key(&child), bson_iter_key_len(&child));
            out_put(o, ":", 1);
        }
        out_value(o, &child, depth + 1);
    }
    if (child.err_off != 0) /* bson_iter_next stopped on corruption */
        o->failed = 1;
    out_put(o, is_doc ? "}" : "]", 1);
}

static void out_value(struct out *o, const bson_iter_t *iter, int depth)
{
    char num[32];
    const char *s;
    uint32_t n;

    switch (bson_iter_type(iter)) {
    case BSON_TYPE_DOCUMENT:
        out_container(o, iter, depth, 1);
        break;
    case BSON_TYPE_ARRAY:
        out_container(o, iter, depth, 0);
        break;
    case BSON_TYPE_UTF8:
        s = bson_iter_utf8(iter, &n);
        out_string(o, s, n);
        break;
    case BSON_TYPE_INT32:
        snprintf(num, sizeof num, "%" PRId32, bson_iter_int32(iter));
        out_str(o, num);
        break;
    case BSON_TYPE_INT64:
        snprintf(num, sizeof num, "%" PRId64, bson_iter_int64(iter));
        out_str(o, num);
        break;
    case BSON_TYPE_DOUBLE:
        out_double(o, bson_iter_double(iter));
        break;
    case BSON_TYPE_BOOL:
        out_str(o, bson_iter_bool(iter) ? "true" : "false");
        break;
    case BSON_TYPE_NULL:
        out_str(o, "null");
        break;
    default:
        out_extended(o, iter);
        break;
    }
}

char *bson_value_to_json(const bson_iter_t *iter, size_t *out_len)
{
    struct out o = {0};

    if (!iter)
        return NULL;
    out_value(&o, iter, 0);
    if (o.failed || !o.b.data) {
        buf_free(&o.b);
        return NULL;
    }
    if (out_len)
        *out_len = o.b.len;
    return (char *)o.b.data;
}
