# shellcheck shell=bash
#
# bash completion for berth(1): commands, global and per-command options,
# option values, and the names of live leases, asked of the broker the line
# points at (--addr, else $BERTH_ADDR). After "--" in "berth run NAME --"
# the rest is completed as a command line of its own.
#
# Installed as $(datadir)/bash-completion/completions/berth, where the
# bash-completion package loads it on demand; without that package,
# source it from ~/.bashrc. It uses bash-completion's helpers when they are
# there and does without them otherwise.

# The commands, as berth.c's table dispatches them.
_berth_commands='acquire renew release lookup list run who doctor nodes
status health version revoke help'

# Options allowed before the command (berth.c's main).
_berth_global_options='--addr --json --help --version'

# Each command's long options, as its getopt_long table in cmd-*.c takes
# them (release rejects --ttl, which the table it shares with renew has).
# --addr and --json are global and allowed anywhere before "--".
_berth_command_options()
{
	case $1 in
	acquire)	echo '--port --ttl --proto --host --meta --pid --token' \
			    '--publish --env' ;;
	renew)		echo '--token --ttl' ;;
	release)	echo '--token' ;;
	lookup)		echo '--wait --addr-only --ready --cluster --all' ;;
	list)		echo '--probe --cluster' ;;
	run)		echo '--ttl --port --host --proto --meta --need' \
			    '--timeout --fd --publish' ;;
	who|doctor)	echo '--help' ;;
	esac
}

# Whether option $1 takes its value from the next word.
_berth_takes_value()
{
	case $1 in
	--addr|--port|--ttl|--proto|--host|--meta|--pid|--token|--wait|\
	--need|--timeout)
		return 0 ;;
	esac
	return 1
}

# Without bash-completion: the words up to the cursor as berth will see
# them. bash splits COMP_WORDS at COMP_WORDBREAKS, ':' and '=' among them,
# which cuts "127.0.0.1:62893" and "--proto=tcp" into pieces; glue back
# the pieces that touch in COMP_LINE. Sets words, cword, cur and prev as
# _init_completion -n =: does.
_berth_split_words()
{
	local i pos=0 start w glue

	words=()
	for ((i = 0; i < ${#COMP_WORDS[@]} && i <= COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		glue=1
		while [[ ${COMP_LINE:pos:1} == [[:space:]] ]]; do
			((pos++))
			glue=0
		done
		start=$pos
		if ((i == COMP_CWORD && COMP_POINT >= start &&
		    COMP_POINT - start < ${#w})); then
			w=${w:0:COMP_POINT-start}
		fi
		if ((i > 0 && glue)); then
			words[${#words[@]}-1]+=$w
		else
			words+=("$w")
		fi
		pos=$((start + ${#COMP_WORDS[i]}))
	done
	cword=$((${#words[@]} - 1))
	cur=${words[cword]}
	prev=
	((cword > 0)) && prev=${words[cword-1]}
	return 0
}

# Set COMPREPLY to the words of list $1 that start with $2.
_berth_reply()
{
	mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

# The live leases as "NAME PORT" lines, from the broker at $1 (empty: the
# default or $BERTH_ADDR); with $2 "cluster", the names the cluster's
# nodes publish instead, one a line. Completion must never hang the shell:
# wait at most $BERTH_COMPLETION_WAIT seconds (default 1) for the answer,
# and print nothing when no broker answers.
# The table is parsed rather than --json: names are one word without
# blanks, and meta keys called "name" cannot get in the way.
_berth_leases()
{
	local out='' name addr bin=berth rc wait=${BERTH_COMPLETION_WAIT:-1}
	local -a argv

	[[ $wait =~ ^[0-9]+$ && $wait -gt 0 ]] || wait=1

	[[ ${words[0]} == */* && -x ${words[0]} ]] && bin=${words[0]}
	argv=("$bin")
	[[ -n $1 ]] && argv+=(--addr "$1")
	argv+=(list)
	[[ $2 == cluster ]] && argv+=(--cluster)
	# timeout(1) ends a berth that is still waiting when we stop; without
	# it, berth gives up by itself (libberth's timeout).
	if type -P timeout >/dev/null 2>&1; then
		argv=(timeout $((wait + 1)) "${argv[@]}")
	else
		argv=(command "${argv[@]}")
	fi
	IFS= read -r -d '' -t "$wait" out < <("${argv[@]}" 2>/dev/null </dev/null)
	rc=$?
	((rc > 128)) && return 0
	while read -r name addr _; do
		[[ $name =~ ^[a-z0-9][a-z0-9._-]*$ ]] || continue
		if [[ $2 == cluster ]]; then
			printf '%s\n' "$name"	# NODE, not an address, follows
		else
			printf '%s %s\n' "$name" "${addr##*:}"
		fi
	done <<<"$out" | uniq
}

# Complete the value $2 of option $1; $3 is the broker address.
_berth_value()
{
	local opt=$1 val=$2 addr=$3 names

	case $opt in
	--proto)
		_berth_reply 'tcp udp both' "$val" ;;
	--host)
		_berth_reply '127.0.0.1 ::1' "$val" ;;
	--need)
		names=$(_berth_leases "$addr" | while read -r n _; do
		    echo "$n"; done)
		_berth_reply "$names" "$val" ;;
	--addr)
		if [[ $val == unix:* ]]; then
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "${val#unix:}")
			COMPREPLY=("${COMPREPLY[@]/#/unix:}")
		else
			_berth_reply "127.0.0.1:62893 [::1]:62893 unix: \
			    ${BERTH_ADDR-}" "$val"
			if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *: ]]; then
				compopt -o nospace 2>/dev/null
			fi
		fi ;;
	esac
	return 0
}

# After "--" in berth run: complete a command line that starts at
# COMP_WORDS[$1]. bash-completion's _command_offset finds the command's
# own completion; without it, command names, then file names.
_berth_command_line()
{
	local first=$1 frag

	if declare -F _command_offset >/dev/null 2>&1; then
		_command_offset "$first"
		return
	fi
	# The text readline replaces: what follows the last ':' or '='.
	frag=${cur##*[=:]}
	compopt -o filenames 2>/dev/null
	if ((COMP_CWORD == first)); then
		mapfile -t COMPREPLY < <(compgen -d -c -- "$frag")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$frag")
		((${#COMPREPLY[@]} == 0)) && compopt -o default 2>/dev/null
	fi
	return 0
}

# bash replaces only the text after the last COMP_WORDBREAKS character in
# the word, so take the part of cur up to it off every candidate, as
# bash-completion's __ltrim_colon_completions does for ':'.
_berth_ltrim()
{
	local i j prefix

	for ((i = ${#cur} - 1; i >= 0; i--)); do
		case ${cur:i:1} in
		:|=)
			[[ $COMP_WORDBREAKS == *"${cur:i:1}"* ]] && break ;;
		esac
	done
	((i < 0)) && return 0
	prefix=${cur:0:i+1}
	for j in "${!COMPREPLY[@]}"; do
		COMPREPLY[j]=${COMPREPLY[j]#"$prefix"}
	done
}

_berth()
{
	# prev is _init_completion's; declared here to keep it local.
	# shellcheck disable=SC2034
	local cur prev words cword
	local i j w cmd='' addr='' valopt='' npos=0 dashdash=0 ndash=0 names
	local cluster=''

	COMPREPLY=()
	if declare -F _init_completion >/dev/null 2>&1; then
		_init_completion -n =: || return
	else
		_berth_split_words
	fi

	# Walk the words before the cursor as berth parses them: global
	# options anywhere before "--", the command, its options and their
	# values, and its positional arguments.
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		if ((dashdash)); then
			((npos++))
			continue
		fi
		case $w in
		--)
			((ndash++))
			[[ -n $cmd ]] && dashdash=1
			if [[ $cmd == run ]]; then
				# The command line to run starts after the
				# ndash'th "--" of COMP_WORDS.
				for ((j = 1; j < COMP_CWORD; j++)); do
					[[ ${COMP_WORDS[j]} == -- ]] &&
					    ((--ndash == 0)) && break
				done
				((j < COMP_CWORD)) &&
				    _berth_command_line $((j + 1))
				return 0
			fi ;;
		--addr=*)
			addr=${w#--addr=} ;;
		--cluster)
			cluster=cluster ;;
		-*=*)
			;;
		-*)
			if _berth_takes_value "$w"; then
				if ((i + 1 == cword)); then
					valopt=$w
				elif [[ $w == --addr ]]; then
					addr=${words[i+1]}
				fi
				((i++))
			fi ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$w
			else
				((npos++))
			fi ;;
		esac
	done
	addr=${addr#[\"\']}
	addr=${addr%[\"\']}

	if [[ -n $valopt ]]; then
		_berth_value "$valopt" "$cur" "$addr"
	elif [[ $cur == --*=* && $dashdash -eq 0 ]]; then
		# --opt=value: complete the value, keep the whole word.
		_berth_value "${cur%%=*}" "${cur#*=}" "$addr"
		COMPREPLY=("${COMPREPLY[@]/#/${cur%%=*}=}")
	elif [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			_berth_reply "$_berth_global_options" "$cur"
		else
			_berth_reply "$_berth_commands" "$cur"
		fi
	elif [[ $cur == -* && $dashdash -eq 0 ]]; then
		_berth_reply "$(_berth_command_options "$cmd") --addr --json" \
		    "$cur"
	elif ((npos == 0)); then
		case $cmd in
		lookup)
			# lookup --cluster: the names the cluster publishes.
			names=$(_berth_leases "$addr" "$cluster" |
			    while read -r n _; do echo "$n"; done)
			_berth_reply "$names" "$cur" ;;
		renew|release|revoke|doctor|run)
			names=$(_berth_leases "$addr" | while read -r n _; do
			    echo "$n"; done)
			_berth_reply "$names" "$cur" ;;
		who)
			names=$(_berth_leases "$addr" | while read -r _ p; do
			    echo "$p"; done)
			_berth_reply "$names" "$cur" ;;
		esac
	fi
	_berth_ltrim
	return 0
}

complete -F _berth berth
