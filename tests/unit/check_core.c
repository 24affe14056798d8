#include <check.h>
#include <stdlib.h>
#include "berthd.h"
START_TEST(test_placeholder_name) { ck_assert(lease_name_valid("api")); } END_TEST
int main(void) {
	Suite *s = suite_create("core"); TCase *tc = tcase_create("names");
	tcase_add_test(tc, test_placeholder_name); suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s); srunner_run_all(sr, CK_NORMAL);
	int f = srunner_ntests_failed(sr); srunner_free(sr); return f ? 1 : 0; }
