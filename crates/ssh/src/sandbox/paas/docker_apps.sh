# The users' apps of the fake platform (sourced before docker.sh's body):
# one directory per container under $SHIM_STATE/apps/<name>/ with
#   id       the full 64-hex id
#   kind     postgres | mysql | redis | app
#   state    running | paused | stopped
#   service  the Swarm service (Dokploy) or compose service it belongs to
#   env      its environment, KEY=VALUE per line (docker exec exports it)
#   volumes  the Docker volumes it mounts, one per line
#   data/    its files: a MySQL's database (mysql.sql), a Redis's dataset
#            (memory), RDB file (dump.rdb) and LASTSAVE counter (lastsave)
#   health   (optional) its Docker health check's status (see app_health)
# A postgres container is a database of the real cluster (its env names
# it); the fake tools in $SHIM_APPTOOLS stand in for the others'.

APPS="$SHIM_STATE/apps"

# Called with an app container's directory when `docker start` started it
# again: nothing here; the sandbox's hosts may inject a fault.
app_started() { :; }

# Prints the directory of the app container named or id'd $1; nothing if
# there is none.
app_dir() {
    [ -d "$APPS" ] || return 0
    for d in "$APPS"/*/; do
        [ -f "$d/id" ] || continue
        n=$(basename "$d")
        id=$(cat "$d/id")
        case $1 in
        "$n" | "$id" | "$(printf '%.12s' "$id")") printf '%s\n' "${d%/}"; return 0 ;;
        esac
    done
}

# Before app container dir $1's health is read: nothing here (a test
# writes its health file itself); the sandbox's hosts may inject one.
app_health_seed() { :; }

# Docker's health status of app container dir $1 (`docker inspect`'s
# .State.Health.Status): the word in its `health` file, `none` without one
# (it declares no health check). `starting N VERDICT` is starting for N
# more looks, then VERDICT, as a check that passes or fails after the
# container's start period; a plain `starting` never ends.
app_health() {
    app_health_seed "$1"
    [ -f "$1/health" ] || { echo none; return 0; }
    read -r h n v <"$1/health" || true
    if [ "$h" = starting ] && [ -n "$n" ]; then
        if [ "$n" -gt 0 ]; then
            printf 'starting %s %s\n' $((n - 1)) "$v" >"$1/health.new"
        else
            printf '%s\n' "$v" >"$1/health.new"
            h=$v
        fi
        mv "$1/health.new" "$1/health"
    fi
    printf '%s\n' "$h"
}

# docker inspect --format $2 of app container dir $1: its state or its
# health status.
app_inspect() {
    case $2 in
    '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}') app_health "$1" ;;
    '{{.State.Status}}') case $(app_state "$1") in stopped) echo exited ;; *) app_state "$1" ;; esac ;;
    *) die "template: unsupported by the kastell test shim: $2" ;;
    esac
}

app_state() { cat "$1/state"; }
app_set_state() { printf '%s\n' "$2" >"$1/state.new" && mv "$1/state.new" "$1/state"; }

# Whether app container dir $1 keeps filter $2 (docker ps --filter).
app_keeps() {
    n=$(basename "$1")
    case $2 in
    name=*) case $n in *"${2#name=}"*) return 0 ;; esac; return 1 ;;
    id=*) case $(cat "$1/id") in "${2#id=}"*) return 0 ;; esac; return 1 ;;
    volume=*) grep -qx -- "${2#volume=}" "$1/volumes" 2>/dev/null ;;
    label=com.docker.swarm.service.name=*)
        [ "$FLAVOUR" = dokploy ] && [ "$(cat "$1/service")" = "${2#label=com.docker.swarm.service.name=}" ]
        ;;
    status=*) [ "$(app_state "$1")" = "${2#status=}" ] ;;
    label=*) return 1 ;;
    *) die "Error response from daemon: invalid filter '$2' (kastell test shim)" ;;
    esac
}

# docker ps's lines for the app containers ($quiet, $all, $notrunc and
# $filters as docker_ps parsed them). A paused container is listed, as
# Docker lists it.
apps_ps() {
    [ -d "$APPS" ] || return 0
    for d in "$APPS"/*/; do
        d=${d%/}
        [ -f "$d/id" ] || continue
        st=$(app_state "$d")
        [ "$all" = 1 ] || [ "$st" != stopped ] || continue
        keep=1
        for f in $filters; do app_keeps "$d" "$f" || { keep=0; break; }; done
        [ "$keep" = 1 ] || continue
        id=$(cat "$d/id")
        [ "$notrunc" = 1 ] || id=$(printf '%.12s' "$id")
        if [ "$quiet" = 1 ]; then printf '%s\n' "$id"; else printf '%s   app   %s   %s\n' "$id" "$st" "$(basename "$d")"; fi
    done
}

# docker exec into an app container: its environment exported, the fake
# tools (and, for postgres, the real client tools on the cluster) first on
# PATH, the host's programs otherwise.
res_exec() {
    d=$1
    shift
    case $(app_state "$d") in
    running) ;;
    paused) die "Error response from daemon: container $(basename "$d") is paused, unpause the container before exec" ;;
    *) die "Error response from daemon: container $(basename "$d") is not running" ;;
    esac
    while IFS= read -r line; do
        [ -n "$line" ] && export "$line"
    done <"$d/env"
    export KASTELL_SHIM_CTR="$d" PGHOST="$PG_SOCKET" PGPORT="$PG_PORT"
    PATH="$SHIM_APPTOOLS:$PG_BIN:$PATH" exec "$@"
}

# docker pause|unpause|stop|start NAME...: app containers only.
docker_app_state() {
    verb=$1
    shift
    [ $# -ge 1 ] || die "\"docker $verb\" requires at least 1 argument."
    for c; do
        d=$(app_dir "$c")
        [ -n "$d" ] || die "Error response from daemon: No such container: $c"
        st=$(app_state "$d")
        case $verb:$st in
        pause:running) app_set_state "$d" paused ;;
        pause:*) die "Error response from daemon: container $c is not running" ;;
        unpause:paused) app_set_state "$d" running ;;
        unpause:*) die "Error response from daemon: container $c is not paused" ;;
        stop:*) [ "$st" = paused ] && die "Error response from daemon: cannot stop a paused container (kastell test shim)"; app_set_state "$d" stopped ;;
        start:stopped) app_load "$d"; app_set_state "$d" running; app_started "$d" ;;
        start:*) ;;
        esac
        printf '%s\n' "$c"
    done
}

# A container starting: a Redis loads its RDB file.
app_load() {
    if [ "$(cat "$1/kind")" = redis ] && [ -f "$1/data/dump.rdb" ]; then
        cp "$1/data/dump.rdb" "$1/data/memory"
    fi
}

# Sets every app container of Swarm service $1 to $2; fails when none.
app_scale() {
    [ -d "$APPS" ] || return 1
    hit=1
    for d in "$APPS"/*/; do
        d=${d%/}
        [ -f "$d/service" ] && [ "$(cat "$d/service")" = "$1" ] || continue
        hit=0
        was=$(app_state "$d")
        if [ "$2" = running ] && [ "$was" = stopped ]; then app_load "$d"; fi
        app_set_state "$d" "$2"
        # Swarm started a new task: the container starts again.
        if [ "$2" = running ] && [ "$was" = stopped ]; then app_started "$d"; fi
    done
    return $hit
}

# The replicas of app service $1 (1 while its containers run, else 0);
# fails when there is no such service.
app_replicas() {
    [ -d "$APPS" ] || return 1
    for d in "$APPS"/*/; do
        d=${d%/}
        [ -f "$d/service" ] && [ "$(cat "$d/service")" = "$1" ] || continue
        if [ "$(app_state "$d")" = stopped ]; then echo 0; else echo 1; fi
        return 0
    done
    return 1
}
