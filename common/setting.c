/* common/setting.c — strict parsing of flag and environment values. */
#include "common/setting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY_MAX 255

const char *setting_env(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

int setting_number(const char *name, const char *value, int base, unsigned long long min,
                   unsigned long long max, unsigned long long *out, char *why)
{
    unsigned long long v;
    const char *p;
    char *end;

    /* strtoull alone would take " 12", "+12", "-1" (as a huge number) and
     * "0x10": only digits of the base are a number here. */
    for (p = value; *p; p++)
        if (*p < '0' || *p > (base == 8 ? '7' : '9'))
            break;
    errno = 0;
    v = strtoull(value, &end, base);
    if (*p || p == value || errno || *end || v < min || v > max) {
        snprintf(why, SETTING_WHY_MAX, "%s: '%.64s' is not a%s number from %llu to %llu", name,
                 value, base == 8 ? "n octal" : "", min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int setting_port(const char *name, const char *value, int *out, char *why)
{
    unsigned long long v;

    if (setting_number(name, value, 10, 1, 65535, &v, why) < 0) {
        snprintf(why, SETTING_WHY_MAX, "%s: '%.64s' is not a port (1 to 65535)", name, value);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int setting_bool(const char *name, const char *value, bool *out, char *why)
{
    static const char *const yes[] = {"1", "on", "yes", "true"};
    static const char *const no[] = {"0", "off", "no", "false"};

    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (!strcmp(value, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(value, no[i])) {
            *out = false;
            return 0;
        }
    }
    snprintf(why, SETTING_WHY_MAX, "%s: '%.64s' is not on or off (1/0, yes/no, true/false)",
             name, value);
    return -1;
}

int setting_word(const char *name, const char *value, const char *const *words, int *out,
                 char *why)
{
    size_t used;
    int i;

    for (i = 0; words[i]; i++)
        if (!strcmp(value, words[i])) {
            *out = i;
            return 0;
        }
    used = (size_t)snprintf(why, SETTING_WHY_MAX, "%s: '%.64s' is not ", name, value);
    for (i = 0; words[i] && used < SETTING_WHY_MAX; i++)
        used += (size_t)snprintf(why + used, SETTING_WHY_MAX - used, "%s%s",
                                 i == 0 ? "" : words[i + 1] ? ", " : " or ", words[i]);
    return -1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int setting_list(const char *name, const char *value,
                 const char *(*each)(void *arg, const char *entry), void *arg, char *why)
{
    const char *p = value;
    char entry[ENTRY_MAX + 1];
    unsigned count = 0;

    for (;;) {
        const char *start, *end, *refused;
        size_t n;

        while (is_blank(*p))
            p++;
        start = p;
        while (*p && *p != ',' && !is_blank(*p))
            p++;
        end = p;
        n = (size_t)(end - start);
        while (is_blank(*p))
            p++;
        if (n == 0) {
            if (*p == '\0' && count > 0 && start[-1] != ',')
                return 0; /* trailing blanks after the last entry */
            snprintf(why, SETTING_WHY_MAX, "%s: '%.64s' has an empty entry", name, value);
            return -1;
        }
        if (n > ENTRY_MAX) {
            snprintf(why, SETTING_WHY_MAX, "%s: an entry of %zu bytes is too long", name, n);
            return -1;
        }
        memcpy(entry, start, n);
        entry[n] = '\0';
        refused = each(arg, entry);
        count++;
        if (refused) {
            snprintf(why, SETTING_WHY_MAX, "%s: '%.64s' %s", name, entry, refused);
            return -1;
        }
        if (*p == '\0')
            return 0;
        if (*p == ',')
            p++; /* one comma between entries, blanks or not around it */
    }
}
