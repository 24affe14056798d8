/*
 * check_nametab.c: unit tests for nametab.c, the hash table the
 * registry's names and memos and the waiters' groups share: finding,
 * adding, removing, growth by doubling with nothing lost, and walking the
 * table while taking entries out.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "unit.h"

#define N	5000

struct item {
	struct nametab_entry	 node;
	char			 name[16];
	int			 seen;
};

static struct nametab	 tab;
static struct item	*items;

#define ITEM_OF(e)	((struct item *)(void *)((char *)(e) - \
			    offsetof(struct item, node)))

static void
setup(void)
{
	int	i;

	ck_assert_int_eq(nametab_init(&tab, 4), 0);
	items = calloc(N, sizeof *items);
	ck_assert_ptr_nonnull(items);
	for (i = 0; i < N; i++)
		snprintf(items[i].name, sizeof items[i].name, "n%d", i);
}

static void
teardown(void)
{
	nametab_free(&tab);
	free(items);
}

START_TEST(test_find_add_remove)
{
	ck_assert_ptr_null(nametab_find(&tab, "n0"));
	nametab_add(&tab, &items[0].node, items[0].name);
	nametab_add(&tab, &items[1].node, items[1].name);
	ck_assert_uint_eq(tab.count, 2);
	ck_assert_ptr_eq(ITEM_OF(nametab_find(&tab, "n0")), &items[0]);
	ck_assert_ptr_eq(ITEM_OF(nametab_find(&tab, "n1")), &items[1]);
	ck_assert_ptr_null(nametab_find(&tab, "n2"));
	/* A name that shares a prefix is another name. */
	ck_assert_ptr_null(nametab_find(&tab, "n"));
	nametab_remove(&tab, &items[0].node);
	ck_assert_uint_eq(tab.count, 1);
	ck_assert_ptr_null(nametab_find(&tab, "n0"));
	ck_assert_ptr_eq(ITEM_OF(nametab_find(&tab, "n1")), &items[1]);
	/* Removing what is not there changes nothing. */
	nametab_remove(&tab, &items[0].node);
	ck_assert_uint_eq(tab.count, 1);
}
END_TEST

/* From 4 buckets to thousands: every entry still found, buckets doubled. */
START_TEST(test_growth)
{
	int	i;

	for (i = 0; i < N; i++)
		nametab_add(&tab, &items[i].node, items[i].name);
	ck_assert_uint_eq(tab.count, N);
	ck_assert_uint_ge(tab.nbuckets, N);
	ck_assert_uint_eq(tab.nbuckets & (tab.nbuckets - 1), 0);
	for (i = 0; i < N; i++)
		ck_assert_ptr_eq(ITEM_OF(nametab_find(&tab, items[i].name)),
		    &items[i]);
	for (i = 0; i < N; i += 2)
		nametab_remove(&tab, &items[i].node);
	ck_assert_uint_eq(tab.count, N / 2);
	for (i = 0; i < N; i++) {
		if (i % 2 == 0)
			ck_assert_ptr_null(nametab_find(&tab, items[i].name));
		else
			ck_assert_ptr_eq(ITEM_OF(nametab_find(&tab,
			    items[i].name)), &items[i]);
	}
}
END_TEST

/* nametab_next visits each entry once while the walker takes them out. */
START_TEST(test_walk_while_removing)
{
	struct nametab_entry	*e;
	size_t			 cursor = 0;
	int			 i, walked = 0;

	for (i = 0; i < N; i++)
		nametab_add(&tab, &items[i].node, items[i].name);
	while ((e = nametab_next(&tab, &cursor)) != NULL) {
		ITEM_OF(e)->seen++;
		nametab_remove(&tab, e);
		walked++;
	}
	ck_assert_int_eq(walked, N);
	ck_assert_uint_eq(tab.count, 0);
	for (i = 0; i < N; i++)
		ck_assert_int_eq(items[i].seen, 1);
	cursor = 0;
	ck_assert_ptr_null(nametab_next(&tab, &cursor));
}
END_TEST

static Suite *
nametab_suite(void)
{
	Suite	*s = suite_create("nametab");
	TCase	*tc = tcase_create("nametab");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_find_add_remove);
	tcase_add_test(tc, test_growth);
	tcase_add_test(tc, test_walk_while_removing);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	return (unit_run(nametab_suite()));
}
