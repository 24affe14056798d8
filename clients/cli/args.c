/*
 * args.c: option parsing that lets NAME stand anywhere among the options,
 * as in "berth acquire api --port 8080" and "berth run --ttl 5 api -- cmd",
 * for every command that takes a NAME.
 */
#include "config.h"

#include <getopt.h>
#include <string.h>

#include "cli.h"

/* Note a word: the first is NAME, the next the first unexpected one. */
static void
args_word(struct cli_args *a, char *word)
{
	if (a->name == NULL)
		a->name = word;
	else if (a->extra == NULL)
		a->extra = word;
}

void
args_init(struct cli_args *a, int mode, const struct option *longopts)
{
	memset(a, 0, sizeof *a);
	a->mode = mode;
	a->longopts = longopts;
	optind = 0;
	opterr = 0;
}

/*
 * getopt stops at the first word ("+"); when it does, take the word (as
 * NAME, or note it as extra) and restart getopt on the rest of argv, a
 * slice whose argv[0] getopt skips: that word. Returns the option
 * character, or -1 when parsing is over. With ARGS_WORDS every word is
 * taken, also after "--"; with ARGS_COMMAND parsing ends at "--", whose
 * followers are a->command, or at a second word, kept as a->extra.
 */
int
args_next(struct cli_args *a, int argc, char **argv)
{
	int	ch, i;

	for (;;) {
		ch = getopt_long(argc - a->state, argv + a->state, "+:",
		    a->longopts, NULL);
		if (ch != -1)
			return (ch);
		i = a->state + optind;
		if (i > a->state + 1 && strcmp(argv[i - 1], "--") == 0) {
			a->dashdash = 1;
			if (a->mode == ARGS_COMMAND) {
				a->command = argv + i;
				return (-1);
			}
			for (; i < argc; i++)
				args_word(a, argv[i]);
			return (-1);
		}
		if (i >= argc)
			return (-1);
		if (a->mode == ARGS_COMMAND && a->name != NULL) {
			a->extra = argv[i];
			return (-1);
		}
		args_word(a, argv[i]);
		a->state = i;
		optind = 0;
	}
}

/* The argument getopt just refused, for the message about it. */
const char *
args_refused(const struct cli_args *a, char **argv)
{
	return (argv[a->state + optind - 1]);
}
