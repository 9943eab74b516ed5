/*
 * common/setting.h — one strict policy for every setting springfield reads,
 * from a command-line flag or from the environment.
 *
 * The policy:
 *   - an environment variable that is unset or set to the empty string is
 *     not given (the built-in default applies); a flag's value is always
 *     given, so `--idle-timeout ""` is an error;
 *   - a value that is given is used exactly as written or refused: no
 *     sign, no blanks, no trailing characters, no unit, inside the stated
 *     range — never a silent fall-back to the default;
 *   - a refusal names the setting and the value and says what was
 *     expected, and springfield does not start.
 *
 * These functions only parse: they write the refusal into why (at least
 * SETTING_WHY_MAX bytes) and the caller reports it, so the same code
 * serves main.c, the engine and the storage shims.
 */
#ifndef SPRINGFIELD_COMMON_SETTING_H
#define SPRINGFIELD_COMMON_SETTING_H

#include <stdbool.h>
#include <stddef.h>

#define SETTING_WHY_MAX 256

/* The environment variable's value, or NULL when it is unset or empty. */
const char *setting_env(const char *name);

/*
 * An unsigned number in [min, max], in base 10 (or base 8 when base is 8:
 * a file mode such as 0660).  0, or -1 with why set.
 */
int setting_number(const char *name, const char *value, int base, unsigned long long min,
                   unsigned long long max, unsigned long long *out, char *why);

/* A TCP port, 1 to 65535. */
int setting_port(const char *name, const char *value, int *out, char *why);

/* 1, on, yes, true / 0, off, no, false. */
int setting_bool(const char *name, const char *value, bool *out, char *why);

/*
 * One of the words of a NULL-terminated list; *out is its index.
 * "debug, info, warn or error" is said in the refusal.
 */
int setting_word(const char *name, const char *value, const char *const *words, int *out,
                 char *why);

/*
 * A list of entries separated by commas and/or blanks ("a,b", "a b",
 * "a, b"; blanks around entries are ignored).  each() is called for every
 * entry (NUL-terminated, at most 255 bytes) in order and returns NULL to
 * accept it or a reason ("is not an IP address") to refuse it; an empty
 * entry ("a,,b", a leading or trailing comma) is refused too.  An empty
 * list is refused: the caller decides what an empty value means before
 * calling.  0, or -1 with why naming the entry.
 */
int setting_list(const char *name, const char *value,
                 const char *(*each)(void *arg, const char *entry), void *arg, char *why);

#endif
