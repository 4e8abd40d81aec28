#!/bin/sh
# The official redis image's entrypoint, for busybox sh: the same arguments
# and environment give the same server.
set -e

# A first argument that is an option (-f, --port) or a config file means
# "run redis-server with these".
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# Started as root: give the data to redis and run as redis. busybox su execs
# the shell, which execs this script, so the server keeps PID 1 and gets the
# container's signals. "--" ends su's options; without it, GNU getopt would
# take the server's own options for su's.
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	export HOME=/data
	# shellcheck disable=SC2016 # expanded by su's shell
	exec su -p -s /bin/sh -c 'exec "$0" "$@"' -- redis "$0" "$@"
fi

# Redis writes its dump with the umask: keep it private unless the user chose.
um="$(umask)"
if [ "$um" = '0022' ]; then
	umask 0077
fi

# Protected mode refuses clients from other addresses when no password is
# set, which is every container but its own. Turn it off unless a config
# file decides.
if [ "$1" = 'redis-server' ]; then
	doProtectedMode=1
	configFile=
	if [ -f "$2" ]; then
		configFile="$2"
		if grep -q '^protected-mode' "$configFile"; then
			doProtectedMode=
		fi
	fi
	if [ "$doProtectedMode" = 1 ]; then
		shift # redis-server
		if [ "$configFile" ]; then
			shift
		fi
		set -- --protected-mode no "$@"
		if [ "$configFile" ]; then
			set -- "$configFile" "$@"
		fi
		# Later options win, so a --protected-mode yes given here still counts.
		set -- redis-server "$@"
	fi
fi

exec "$@"
