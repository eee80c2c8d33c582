# docker: the subset of the Docker CLI the platforms use, mapped onto a
# private PostgreSQL cluster and the shim's state file. (Body of a shim:
# the header sets FLAVOUR, PG_*, APP_*, DB_* and has already logged the call.)

die() {
    printf '%s\n' "$1" >&2
    exit "${2:-1}"
}

# Prints app or db for a container/service name or id; nothing if unknown.
which_of() {
    case $1 in
    "$DB_ID" | "$DB_SHORT" | "$DB_NAME" | "$DB_SERVICE") echo db ;;
    "$APP_ID" | "$APP_SHORT" | "$APP_NAME" | "$APP_SERVICE") echo app ;;
    esac
}

image_of() {
    if [ "$1" = app ]; then echo "$APP_IMAGE:$(state_get version)"; else echo "$DB_IMAGE"; fi
}

docker_exec() {
    while [ $# -gt 0 ]; do
        case $1 in
        -i | -t | -it | -ti | -d | --interactive | --tty | --detach) shift ;;
        -u | --user) [ $# -ge 2 ] || die "flag needs an argument: $1"; export PGUSER="$2"; shift 2 ;;
        -e | --env) [ $# -ge 2 ] || die "flag needs an argument: $1"; export "$2"; shift 2 ;;
        -w | --workdir) [ $# -ge 2 ] || die "flag needs an argument: $1"; shift 2 ;;
        --user=*) export PGUSER="${1#--user=}"; shift ;;
        --*=*) shift ;;
        -*) die "unknown flag: $1 (kastell test shim)" 125 ;;
        *) break ;;
        esac
    done
    [ $# -ge 2 ] || die '"docker exec" requires at least 2 arguments.'
    container=$1
    program=$2
    shift 2
    case $container in
    "$DB_ID" | "$DB_SHORT" | "$DB_NAME") ;;
    *) die "Error response from daemon: No such container: $container" ;;
    esac
    [ "$(state_get db)" = running ] || die "Error response from daemon: container $container is not running"
    case $program in
    pg_dump | pg_dumpall | pg_restore | psql | pg_isready) ;;
    *) die "OCI runtime exec failed: exec failed: unable to start container process: exec: \"$program\": executable file not found in \$PATH: unknown (kastell test shim runs only pg_dump, pg_restore, psql and pg_isready)" 127 ;;
    esac
    PGHOST=$PG_SOCKET PGPORT=$PG_PORT exec "$PG_BIN/$program" "$@"
}

docker_ps() {
    quiet=0 all=0 notrunc=0 filters=''
    while [ $# -gt 0 ]; do
        case $1 in
        --no-trunc) notrunc=1; shift ;;
        --quiet) quiet=1; shift ;;
        --all) all=1; shift ;;
        --filter) [ $# -ge 2 ] || die "flag needs an argument: --filter"; filters="$filters $2"; shift 2 ;;
        --filter=*) filters="$filters ${1#--filter=}"; shift ;;
        --format) [ $# -ge 2 ] || die "flag needs an argument: --format"; shift 2 ;;
        --format=*) shift ;;
        --*) die "unknown flag: $1 (kastell test shim)" ;;
        -*)
            rest=${1#-}
            shift
            while [ -n "$rest" ]; do
                c=${rest%"${rest#?}"}
                rest=${rest#?}
                case $c in
                q) quiet=1 ;;
                a) all=1 ;;
                f)
                    if [ -n "$rest" ]; then filters="$filters $rest"; rest=''
                    else [ $# -ge 1 ] || die "flag needs an argument: 'f' in -f"; filters="$filters $1"; shift; fi
                    ;;
                *) die "unknown shorthand flag: '$c' (kastell test shim)" ;;
                esac
            done
            ;;
        *) die '"docker ps" accepts no arguments.' ;;
        esac
    done
    [ "$quiet" = 1 ] || printf 'CONTAINER ID   IMAGE   STATUS   NAMES\n'
    for which in app db; do
        if [ "$which" = app ]; then id=$APP_ID name=$APP_NAME; else id=$DB_ID name=$DB_NAME; fi
        running=$(state_get "$which")
        [ "$all" = 1 ] || [ "$running" = running ] || continue
        keep=1
        for f in $filters; do
            case $f in
            name=*) case $name in *"${f#name=}"*) ;; *) keep=0 ;; esac ;;
            id=*) case $id in "${f#id=}"*) ;; *) keep=0 ;; esac ;;
            status=*) [ "${f#status=}" = "$running" ] || { [ "${f#status=}" = exited ] && [ "$running" != running ]; } || keep=0 ;;
            *) die "Error response from daemon: invalid filter '$f' (kastell test shim)" ;;
            esac
        done
        [ "$keep" = 1 ] || continue
        [ "$notrunc" = 1 ] || id=$(printf '%.12s' "$id")
        if [ "$quiet" = 1 ]; then
            printf '%s\n' "$id"
        else
            if [ "$running" = running ]; then status=Up; else status=Exited; fi
            printf '%s   %s   %s   %s\n' "$id" "$(image_of "$which")" "$status" "$name"
        fi
    done
}

docker_inspect() {
    format='' names=''
    while [ $# -gt 0 ]; do
        case $1 in
        -f | --format) [ $# -ge 2 ] || die "flag needs an argument: $1"; format=$2; shift 2 ;;
        --format=*) format=${1#--format=}; shift ;;
        --type) shift 2 ;;
        --type=*) shift ;;
        -*) die "unknown flag: $1 (kastell test shim)" ;;
        *) names="$names $1"; shift ;;
        esac
    done
    [ -n "$names" ] || die '"docker inspect" requires at least 1 argument.'
    for name in $names; do
        which=$(which_of "$name")
        [ -n "$which" ] || die "Error: No such object: $name"
        image=$(image_of "$which")
        if [ "$(state_get "$which")" = running ]; then status=running flag=true; else status=exited flag=false; fi
        case $format in
        '') printf '[{"Name":"/%s","Config":{"Image":"%s"},"State":{"Status":"%s","Running":%s}}]\n' "$name" "$image" "$status" "$flag" ;;
        *'{{.Config.Image}}'* | *'{{.Spec.TaskTemplate.ContainerSpec.Image}}'*) printf '%s\n' "$image" ;;
        *'{{.State.Status}}'*) printf '%s\n' "$status" ;;
        *'{{.State.Running}}'*) printf '%s\n' "$flag" ;;
        *) die "template: unsupported by the kastell test shim: $format" ;;
        esac
    done
}

# Prints app or db for a container name or id (not a service name: like
# Docker, `docker logs` finds containers only); nothing if unknown.
container_of() {
    case $1 in
    "$DB_ID" | "$DB_SHORT" | "$DB_NAME") echo db ;;
    "$APP_ID" | "$APP_SHORT" | "$APP_NAME") echo app ;;
    esac
}

# The last $2 lines (all when empty) of the fake log of $1 (app or db):
# twenty numbered lines.
fake_log() {
    i=1
    while [ "$i" -le 20 ]; do
        printf 'kastell-shim %s log line %s\n' "$1" "$i"
        i=$((i + 1))
    done | if [ -n "$2" ]; then tail -n "$2"; else cat; fi
}

# Reads --tail/-n N from "$@" into $tail and the one name left into $name.
logs_args() {
    tail='' name=''
    while [ $# -gt 0 ]; do
        case $1 in
        -n | --tail) [ $# -ge 2 ] || die "flag needs an argument: $1"; tail=$2; shift 2 ;;
        --tail=*) tail=${1#--tail=}; shift ;;
        -f | --follow) die "kastell test shim: --follow would never end" ;;
        -t | --timestamps | --details | --raw | --no-trunc | --no-task-ids | --no-resolve) shift ;;
        --since | --until) shift 2 ;;
        -*) die "unknown flag: $1 (kastell test shim)" ;;
        *) [ -z "$name" ] || die "\"docker logs\" requires exactly 1 argument."; name=$1; shift ;;
        esac
    done
    [ -n "$name" ] || die "\"docker logs\" requires exactly 1 argument."
    case $tail in '' | all) tail='' ;; *[!0-9]*) die "invalid value for --tail: $tail" ;; esac
}

docker_logs() {
    logs_args "$@"
    which=$(container_of "$name")
    [ -n "$which" ] || die "Error response from daemon: No such container: $name"
    fake_log "$which" "$tail"
}

# Sets app/db for a compose service or swarm service name.
set_service() {
    case $1 in
    "$APP_SERVICE") state_set app "$2" ;;
    "$DB_SERVICE") state_set db "$2" ;;
    *) return 1 ;;
    esac
}

docker_compose() {
    [ "$FLAVOUR" = coolify ] || die "no configuration file provided: not found"
    while [ $# -gt 0 ]; do
        case $1 in
        -f | --file | -p | --project-name | --project-directory | --env-file | --ansi | --progress)
            [ $# -ge 2 ] || die "flag needs an argument: $1"; shift 2 ;;
        --*=*) shift ;;
        -*) die "unknown flag: $1 (kastell test shim)" ;;
        *) break ;;
        esac
    done
    [ $# -ge 1 ] || die "docker compose: a command is required (kastell test shim)"
    action=$1
    shift
    services=''
    while [ $# -gt 0 ]; do
        case $1 in
        -t | --timeout | --pull | --scale) shift 2 ;;
        -*) shift ;;
        *) services="$services $1"; shift ;;
        esac
    done
    case $action in
    stop | down) value=stopped verb=Stopped ;;
    up | start | restart) value=running verb=Started ;;
    *) die "docker compose $action: unsupported by the kastell test shim" ;;
    esac
    [ -n "$services" ] || services="$APP_SERVICE $DB_SERVICE"
    for s in $services; do
        case $s in
        redis | soketi) ;;
        *) set_service "$s" "$value" || die "no such service: $s" ;;
        esac
        printf ' Container %s  %s\n' "$s" "$verb" >&2
    done
}

docker_service() {
    [ "$FLAVOUR" = dokploy ] || die "Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
    [ $# -ge 1 ] || die '"docker service" requires a subcommand'
    sub=$1
    shift
    case $sub in
    scale) ;;
    logs)
        logs_args "$@"
        case $name in
        "$APP_SERVICE") which=app task=$APP_NAME ;;
        "$DB_SERVICE") which=db task=$DB_NAME ;;
        *) die "Error response from daemon: service $name not found" ;;
        esac
        fake_log "$which" "$tail" | sed "s/^/$task@kastell-shim    | /"
        return 0
        ;;
    ls)
        printf 'NAME   REPLICAS   IMAGE\n'
        for which in app db; do
            if [ "$which" = app ]; then n=$APP_SERVICE; else n=$DB_SERVICE; fi
            if [ "$(state_get "$which")" = running ]; then r=1/1; else r=0/0; fi
            printf '%s   %s   %s\n' "$n" "$r" "$(image_of "$which")"
        done
        return 0
        ;;
    *) die "docker service $sub: unsupported by the kastell test shim" ;;
    esac
    [ $# -ge 1 ] || die '"docker service scale" requires at least 1 argument.'
    for arg in "$@"; do
        case $arg in
        -d | --detach) continue ;;
        *=*) ;;
        *) die "invalid scale specifier '$arg'." ;;
        esac
        name=${arg%%=*}
        n=${arg#*=}
        case $n in '' | *[!0-9]*) die "invalid replicas value $n: must be a non-negative integer" ;; esac
        if [ "$n" -gt 0 ]; then value=running; else value=stopped; fi
        case $name in
        dokploy-redis | dokploy-traefik) ;;
        *) set_service "$name" "$value" || die "Error response from daemon: service $name not found" ;;
        esac
        printf '%s scaled to %s\n' "$name" "$n"
        printf 'overall progress: %s out of %s tasks\nverify: Service %s converged\n' "$n" "$n" "$name" >&2
    done
}

[ $# -ge 1 ] || die "Usage:  docker [OPTIONS] COMMAND (kastell test shim)"
command=$1
shift
case $command in
exec) docker_exec "$@" ;;
logs) docker_logs "$@" ;;
ps) docker_ps "$@" ;;
inspect) docker_inspect "$@" ;;
compose) docker_compose "$@" ;;
service) docker_service "$@" ;;
*) die "docker: '$command' is not a docker command supported by the kastell test shim" ;;
esac
