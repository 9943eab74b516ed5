/*
 * tests/unit/unit.h — the one main() shape of every CUnit test program.
 *
 *   int main(void)
 *   {
 *       static const struct unit_test tests[] = {
 *           {"what it checks", test_function},
 *           {NULL, NULL},
 *       };
 *       return unit_run("suite", tests, 300);
 *   }
 *
 * unit_run registers the tests in one suite, runs them verbosely, and
 * returns the exit status: 0 all passed, 1 something failed, 2 CUnit
 * itself could not start.  watchdog_s arms alarm(): a hang is a failure.
 */
#ifndef SPRINGFIELD_TESTS_UNIT_H
#define SPRINGFIELD_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <unistd.h>

struct unit_test {
    const char *name;
    CU_TestFunc fn;
};

static inline int unit_run(const char *suite, const struct unit_test *tests,
                           unsigned watchdog_s)
{
    CU_pSuite s;
    unsigned failed;

    alarm(watchdog_s);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    s = CU_add_suite(suite, NULL, NULL);
    if (!s) {
        CU_cleanup_registry();
        return 2;
    }
    for (; tests->name; tests++)
        if (!CU_add_test(s, tests->name, tests->fn)) {
            CU_cleanup_registry();
            return 2;
        }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_tests_failed() + CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

#endif
