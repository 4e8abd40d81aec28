#!/bin/sh
# shellcheck shell=dash # busybox ash has local, as dash does
# The official postgres image's entrypoint (docker-library/postgres), for
# busybox sh: the same environment variables, init scripts and arguments
# give the same database. Differences: no nss_wrapper (running as a user
# that /etc/passwd does not list is unsupported), and host connections need
# the password even over loopback (see docker_init_database_dir).
set -e

# file_env VAR [DEFAULT] sets VAR from itself, else from the file VAR_FILE
# names (Docker secrets), else DEFAULT.
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}" val fileVal
	eval "val=\"\${$var:-}\" fileVal=\"\${$fileVar:-}\""
	if [ -n "$val" ] && [ -n "$fileVal" ]; then
		printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$fileVar"
		exit 1
	fi
	if [ -z "$val" ]; then
		if [ -n "$fileVal" ]; then
			val="$(cat "$fileVal")"
		else
			val="$def"
		fi
	fi
	export "$var=$val"
	unset "$fileVar"
}

docker_setup_env() {
	file_env 'POSTGRES_PASSWORD'
	file_env 'POSTGRES_USER' 'postgres'
	file_env 'POSTGRES_DB' "$POSTGRES_USER"
	file_env 'POSTGRES_INITDB_ARGS'
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	DATABASE_ALREADY_EXISTS=
	# PG_VERSION is what marks a data directory as initialised.
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS=true
	fi
}

docker_create_db_directories() {
	local user
	user="$(id -u)"
	mkdir -p "$PGDATA"
	# postgres refuses a data directory others can read; where chmod fails
	# (a directory the user does not own), postgres will say so itself.
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		if [ "$user" = '0' ]; then
			find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
		fi
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$user" = '0' ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	fi
}

docker_verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ 'trust' != "$POSTGRES_HOST_AUTH_METHOD" ]; then
		cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.

       See PostgreSQL documentation about "trust":
       https://www.postgresql.org/docs/current/auth-trust.html
EOE
		exit 1
	fi
	if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
		cat >&2 <<'EOWARN'
********************************************************************************
WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow
         anyone with access to the Postgres port to access your database without
         a password, even if POSTGRES_PASSWORD is set.
         It is not recommended to use POSTGRES_HOST_AUTH_METHOD=trust. Replace
         it with "-e POSTGRES_PASSWORD=password" instead to set a password in
         "docker run".
********************************************************************************
EOWARN
	fi
}

# docker_init_database_dir runs initdb. Local (unix socket) connections are
# trusted, as in the official image, so that init scripts and `exec psql`
# need no password. Host connections use POSTGRES_HOST_AUTH_METHOD, by
# default scram-sha-256 (PostgreSQL 15's password_encryption), from every
# address, loopback included: the official image leaves loopback on trust,
# which would let anything sharing the container's network in unasked.
docker_init_database_dir() {
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi
	# initdb reads the password from a file; mktemp makes it private. initdb
	# refuses an empty file, hence the newline.
	local pwfile status=0
	pwfile="$(mktemp)"
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	# POSTGRES_INITDB_ARGS is split as the shell splits words, as in the
	# official image; options in it come later and so win.
	eval 'initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" '"$POSTGRES_INITDB_ARGS"' "$@"' || status=$?
	rm -f "$pwfile"
	return "$status"
}

pg_setup_hba_conf() {
	{
		printf '\n'
		if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
			printf '# warning trust is enabled for all connections\n'
			printf '# see https://www.postgresql.org/docs/15/auth-trust.html\n'
		fi
		printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
}

# quote_args prints its arguments quoted for sh, which pg_ctl -o goes through.
quote_args() {
	local a
	for a; do
		printf "'%s' " "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"
	done
}

# docker_temp_server_start starts the server for the init scripts on its unix
# socket only, so that nothing connects before initialisation is complete.
docker_temp_server_start() {
	if [ "$1" = 'postgres' ]; then
		shift
	fi
	set -- "$@" -c listen_addresses='' -p "${PGPORT:-5432}"
	PGUSER="${PGUSER:-$POSTGRES_USER}" \
		pg_ctl -D "$PGDATA" -o "$(quote_args "$@")" -w start
}

docker_temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" \
		pg_ctl -D "$PGDATA" -m fast -w stop
}

# docker_process_sql runs psql on the temporary server as POSTGRES_USER, in
# POSTGRES_DB unless the arguments name another database.
docker_process_sql() {
	if [ -n "$POSTGRES_DB" ]; then
		set -- --dbname "$POSTGRES_DB" "$@"
	fi
	PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

docker_setup_db() {
	local exists
	exists="$(docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<'EOSQL'
SELECT 1 FROM pg_database WHERE datname = :'db' ;
EOSQL
)"
	if [ -z "$exists" ]; then
		docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<'EOSQL'
CREATE DATABASE :"db" ;
EOSQL
		printf '\n'
	fi
}

# docker_process_init_files runs *.sh (executable: run, else sourced, so
# they can use docker_process_sql) and loads *.sql, *.sql.gz and *.sql.xz.
docker_process_init_files() {
	printf '\n'
	local f
	for f; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				printf '%s: running %s\n' "$0" "$f"
				"$f"
			else
				printf '%s: sourcing %s\n' "$0" "$f"
				# shellcheck disable=SC1090 # the user's init script
				. "$f"
			fi
			;;
		*.sql)
			printf '%s: running %s\n' "$0" "$f"
			docker_process_sql -f "$f"
			printf '\n'
			;;
		*.sql.gz)
			printf '%s: running %s\n' "$0" "$f"
			gunzip -c "$f" | docker_process_sql
			printf '\n'
			;;
		*.sql.xz)
			printf '%s: running %s\n' "$0" "$f"
			xzcat "$f" | docker_process_sql
			printf '\n'
			;;
		*.sql.zst)
			printf >&2 '%s: %s: this image has no zstd; compress with gzip or xz\n' "$0" "$f"
			exit 1
			;;
		*)
			printf '%s: ignoring %s\n' "$0" "$f"
			;;
		esac
		printf '\n'
	done
}

# _pg_want_help reports whether postgres is only asked to print something.
_pg_want_help() {
	local arg
	for arg; do
		case "$arg" in
		-'?' | --help | --describe-config | -V | --version)
			return 0
			;;
		esac
	done
	return 1
}

_main() {
	# A first argument that is an option means "run postgres with these".
	if [ "${1#-}" != "$1" ]; then
		set -- postgres "$@"
	fi

	if [ "$1" = 'postgres' ] && ! _pg_want_help "$@"; then
		docker_setup_env
		docker_create_db_directories
		# Started as root: start again as postgres. busybox su execs the
		# shell, which execs this script, so postgres ends up as PID 1 and
		# gets the container's signals. "--" ends su's options; without it,
		# GNU getopt would take postgres's own (-c, -p) for su's.
		if [ "$(id -u)" = '0' ]; then
			export HOME=/var/lib/postgresql
			# shellcheck disable=SC2016 # expanded by su's shell
			exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- postgres "$0" "$@"
		fi

		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
			docker_verify_minimum_env
			# Fail now on an unreadable init directory rather than with a
			# half-initialised database.
			ls /docker-entrypoint-initdb.d/ >/dev/null
			docker_init_database_dir
			pg_setup_hba_conf
			# For init scripts' psql when POSTGRES_INITDB_ARGS makes local
			# connections ask for a password; harmless otherwise.
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			docker_temp_server_start "$@"
			docker_setup_db
			docker_process_init_files /docker-entrypoint-initdb.d/*
			docker_temp_server_stop
			unset PGPASSWORD
			printf '\nPostgreSQL init process complete; ready for start up.\n\n'
		else
			printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
		fi
	fi

	exec "$@"
}

_main "$@"
