/*
 * table.c: the tables for people that list and nodes print: a header
 * row, then one row per item, each column as wide as its widest cell,
 * two blanks between columns and none at the end of a line.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void
table_init(struct table *t, int ncol, const char **headers)
{
	int	c;

	memset(t, 0, sizeof *t);
	t->ncol = ncol < TABLE_MAXCOL ? ncol : TABLE_MAXCOL;
	t->headers = headers;
	for (c = 0; c < t->ncol; c++)
		t->width[c] = strlen(headers[c]);
}

/* Add a row of ncol cells, copied; 0, or -1 when out of memory. */
int
table_add(struct table *t, const char *const *cells)
{
	char	**more;
	size_t	  len;
	int	  c;

	more = reallocarray(t->cells, (t->nrows + 1) * t->ncol,
	    sizeof *t->cells);
	if (more == NULL)
		return (-1);
	t->cells = more;
	more += t->nrows * t->ncol;
	for (c = 0; c < t->ncol; c++) {
		if ((more[c] = strdup(cells[c])) == NULL) {
			while (c-- > 0)
				free(more[c]);
			return (-1);
		}
	}
	for (c = 0; c < t->ncol; c++) {
		if ((len = strlen(more[c])) > t->width[c])
			t->width[c] = len;
	}
	t->nrows++;
	return (0);
}

/* One line of cells, padded to the columns' widths. */
static void
table_print_row(const struct table *t, const char *const *cells)
{
	int	c;

	for (c = 0; c < t->ncol; c++) {
		if (c == t->ncol - 1)
			printf("%s\n", cells[c]);
		else
			printf("%-*s  ", (int)t->width[c], cells[c]);
	}
}

void
table_print(const struct table *t)
{
	size_t	i;

	table_print_row(t, t->headers);
	for (i = 0; i < t->nrows; i++)
		table_print_row(t, (const char *const *)t->cells +
		    i * t->ncol);
}

void
table_free(struct table *t)
{
	size_t	i;

	for (i = 0; i < t->nrows * t->ncol; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
	t->nrows = 0;
}
