# docker: the subset of the Docker CLI the platforms use, mapped onto a
# private PostgreSQL cluster and the shim's state file. (Body of a shim:
# the header sets FLAVOUR, PG_*, APP_*, DB_* and has already logged the call.)
#
# Swarm state (Dokploy) lives in $SHIM_STATE/swarm: secrets/<name>.value and
# secrets/<name>.id (the secret store: values are never printed except by
# `cat /run/secrets/<name>` inside the app task that mounts them),
# service-secrets ("<id> <name>" per secret the app service mounts),
# service-env (the app service's environment, KEY=VALUE per line) and fs/
# (other files of the app container, by absolute path).

die() {
    printf '%s\n' "$1" >&2
    exit "${2:-1}"
}

SWARM="$SHIM_STATE/swarm"

not_swarm() {
    die "Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
}

# A fresh 25-character id, like Swarm's.
new_id() {
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-25
}

# The id of the secret $1 the app service mounts; nothing if it does not.
mounted_id() {
    [ -f "$SWARM/service-secrets" ] || return 0
    awk -v n="$1" '$2 == n { print $1; exit }' "$SWARM/service-secrets"
}

# $1 with backslashes and double quotes escaped for a JSON string.
json_escape() {
    printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'
}

# Rewrites the file $1 without the lines awk program $2 matches (-v n=$3).
drop_lines() {
    [ -f "$1" ] || return 0
    drop_tmp=$(mktemp "$1.XXXXXX") || die "kastell shim: cannot rewrite $1"
    awk -v n="$3" "!($2)" "$1" >"$drop_tmp" && chmod 666 "$drop_tmp" && mv "$drop_tmp" "$1"
}

# Runs `cat` or `printenv` inside the platform's application container.
app_exec() {
    [ "$(state_get app)" = running ] || die "Error response from daemon: container $container is not running"
    case $program in
    cat)
        [ $# -eq 1 ] || die "kastell test shim: cat in the app container reads exactly one file"
        path=$1
        case $path in
        /run/secrets/*)
            n=${path#/run/secrets/}
            if [ -n "$(mounted_id "$n")" ] && [ -f "$SWARM/secrets/$n.value" ]; then
                exec cat "$SWARM/secrets/$n.value"
            fi
            ;;
        esac
        if [ -f "$SWARM/fs$path" ]; then exec cat "$SWARM/fs$path"; fi
        die "cat: $path: No such file or directory"
        ;;
    printenv)
        [ $# -eq 1 ] || die "kastell test shim: printenv in the app container prints exactly one variable"
        [ -f "$SWARM/service-env" ] || exit 1
        awk -v n="$1" 'index($0, n "=") == 1 { print substr($0, length(n) + 2); found = 1 } END { exit !found }' "$SWARM/service-env"
        exit $?
        ;;
    *) die "OCI runtime exec failed: exec failed: unable to start container process: exec: \"$program\": executable file not found in \$PATH: unknown (kastell test shim runs only cat and printenv in the app container)" 127 ;;
    esac
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
    ad=$(app_dir "$container")
    if [ -n "$ad" ]; then res_exec "$ad" "$program" "$@"; fi
    case $container in
    "$DB_ID" | "$DB_SHORT" | "$DB_NAME") ;;
    "$APP_ID" | "$APP_SHORT" | "$APP_NAME") app_exec "$@" ;;
    *) die "Error response from daemon: No such container: $container" ;;
    esac
    [ "$(state_get db)" = running ] || die "Error response from daemon: container $container is not running"
    case $program in
    pg_dump | pg_dumpall | pg_restore | psql | pg_isready) ;;
    sh)
        # A script in the database container (a parallel dump's temporary
        # directory): the PostgreSQL client tools first on its PATH, the
        # host's sh, tar, df and mktemp standing in for the image's, and
        # the container's own /tmp under the shim's state.
        mkdir -p "$SHIM_STATE/container-tmp"
        PGHOST=$PG_SOCKET PGPORT=$PG_PORT PATH="$PG_BIN:$PATH" TMPDIR="$SHIM_STATE/container-tmp" \
            exec sh "$@"
        ;;
    *) die "OCI runtime exec failed: exec failed: unable to start container process: exec: \"$program\": executable file not found in \$PATH: unknown (kastell test shim runs only pg_dump, pg_restore, psql, pg_isready and sh)" 127 ;;
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
            label=com.docker.swarm.service.name=*)
                # Only Swarm tasks (Dokploy) carry the label.
                if [ "$which" = app ]; then svc=$APP_SERVICE; else svc=$DB_SERVICE; fi
                { [ "$FLAVOUR" = dokploy ] && [ "${f#label=com.docker.swarm.service.name=}" = "$svc" ]; } || keep=0
                ;;
            label=* | volume=*) keep=0 ;;
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
    apps_ps
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
        ad=$(app_dir "$name")
        if [ -n "$ad" ]; then app_inspect "$ad" "$format"; continue; fi
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

# Prints the container spec of app or db ($1) as `docker service inspect
# --format '{{json .Spec.TaskTemplate.ContainerSpec}}'` does.
container_spec_json() {
    printf '{"Image":"%s"' "$(image_of "$1")"
    if [ "$1" = app ] && [ -s "$SWARM/service-env" ]; then
        printf ',"Env":['
        sep=''
        while IFS= read -r line; do
            printf '%s"%s"' "$sep" "$(json_escape "$line")"
            sep=,
        done <"$SWARM/service-env"
        printf ']'
    fi
    if [ "$1" = app ] && [ -s "$SWARM/service-secrets" ]; then
        printf ',"Secrets":['
        sep=''
        while read -r id n; do
            printf '%s{"File":{"Name":"%s","UID":"0","GID":"0","Mode":292},"SecretID":"%s","SecretName":"%s"}' "$sep" "$n" "$id" "$n"
            sep=,
        done <"$SWARM/service-secrets"
        printf ']'
    fi
    printf '}\n'
}

service_inspect() {
    format='' names=''
    while [ $# -gt 0 ]; do
        case $1 in
        -f | --format) [ $# -ge 2 ] || die "flag needs an argument: $1"; format=$2; shift 2 ;;
        --format=*) format=${1#--format=}; shift ;;
        -*) die "unknown flag: $1 (kastell test shim)" ;;
        *) names="$names $1"; shift ;;
        esac
    done
    [ -n "$names" ] || die '"docker service inspect" requires at least 1 argument.'
    for name in $names; do
        if r=$(app_replicas "$name"); then
            [ "$format" = '{{.Spec.Mode.Replicated.Replicas}}' ] || die "template: unsupported by the kastell test shim: $format"
            printf '%s\n' "$r"
            continue
        fi
        case $name in
        "$APP_SERVICE") which=app ;;
        "$DB_SERVICE") which=db ;;
        *) die "Status: Error: no such service: $name, Code: 1" ;;
        esac
        case $format in
        '{{json .Spec.TaskTemplate.ContainerSpec}}') container_spec_json "$which" ;;
        '{{.Spec.TaskTemplate.ContainerSpec.Image}}') image_of "$which" ;;
        '') printf '[{"Spec":{"Name":"%s","TaskTemplate":{"ContainerSpec":%s}}}]\n' "$name" "$(container_spec_json "$which")" ;;
        *) die "template: unsupported by the kastell test shim: $format" ;;
        esac
    done
}

# docker service update: secrets and environment of the app service (what
# Docker removes is removed before what it adds), --detach/--quiet/--force.
service_update() {
    service=''
    for arg; do service=$arg; done
    case $service in
    "$APP_SERVICE") ;;
    "$DB_SERVICE") ;;
    '' | -*) die '"docker service update" requires exactly 1 argument.' ;;
    *) die "Error response from daemon: service $service not found" ;;
    esac
    mkdir -p "$SWARM"
    for phase in check remove add; do
        flag=''
        for arg; do
            if [ -n "$flag" ]; then
                case $phase:$flag in
                check:*) [ "$service" = "$APP_SERVICE" ] || die "kastell test shim: only $APP_SERVICE has secrets and environment" ;;
                remove:--secret-rm) drop_lines "$SWARM/service-secrets" '$2 == n' "$arg" ;;
                remove:--env-rm) drop_lines "$SWARM/service-env" 'index($0, n "=") == 1 || $0 == n' "$arg" ;;
                add:--secret-add)
                    n=$arg
                    case $n in *source=*) n=${n#*source=}; n=${n%%,*} ;; esac
                    [ -f "$SWARM/secrets/$n.id" ] || die "Error response from daemon: secret not found: $n"
                    drop_lines "$SWARM/service-secrets" '$2 == n' "$n"
                    printf '%s %s\n' "$(cat "$SWARM/secrets/$n.id")" "$n" >>"$SWARM/service-secrets"
                    chmod 666 "$SWARM/service-secrets"
                    ;;
                add:--env-add)
                    case $arg in
                    *=*) k=${arg%%=*} entry=$arg ;;
                    *)
                        k=$arg
                        case $k in '' | [0-9]* | *[!A-Za-z0-9_]*) die "invalid environment variable: $k" ;; esac
                        if eval "[ -n \"\${$k+x}\" ]"; then eval "entry=\"\$k=\${$k}\""; else entry=$k; fi
                        ;;
                    esac
                    drop_lines "$SWARM/service-env" 'index($0, n "=") == 1 || $0 == n' "$k"
                    printf '%s\n' "$entry" >>"$SWARM/service-env"
                    chmod 666 "$SWARM/service-env"
                    ;;
                esac
                flag=''
                continue
            fi
            case $arg in
            --secret-add | --secret-rm | --env-add | --env-rm) flag=$arg ;;
            -d | --detach | --detach=* | -q | --quiet | --force) ;;
            -*) die "unknown flag: $arg (kastell test shim)" ;;
            *) [ "$arg" = "$service" ] || die "\"docker service update\" requires exactly 1 argument." ;;
            esac
        done
        [ -z "$flag" ] || die "flag needs an argument: $flag"
    done
    printf '%s\n' "$service"
    printf 'overall progress: 0 out of 0 tasks\nverify: Service %s converged\n' "$service" >&2
}

docker_secret() {
    [ "$FLAVOUR" = dokploy ] || not_swarm
    [ $# -ge 1 ] || die '"docker secret" requires a subcommand'
    sub=$1
    shift
    mkdir -p "$SWARM/secrets"
    case $sub in
    ls | list)
        format='' quiet=0
        while [ $# -gt 0 ]; do
            case $1 in
            --format) [ $# -ge 2 ] || die "flag needs an argument: --format"; format=$2; shift 2 ;;
            --format=*) format=${1#--format=}; shift ;;
            -q | --quiet) quiet=1; shift ;;
            *) die "unknown flag: $1 (kastell test shim)" ;;
            esac
        done
        [ "$quiet" = 1 ] || [ -n "$format" ] || printf 'ID                          NAME\n'
        for f in "$SWARM"/secrets/*.id; do
            [ -e "$f" ] || continue
            n=$(basename "$f" .id)
            id=$(cat "$f")
            if [ "$quiet" = 1 ]; then printf '%s\n' "$id"; continue; fi
            case $format in
            '') printf '%s   %s\n' "$id" "$n" ;;
            '{{.Name}}') printf '%s\n' "$n" ;;
            '{{.ID}}') printf '%s\n' "$id" ;;
            '{{.ID}} {{.Name}}') printf '%s %s\n' "$id" "$n" ;;
            *) die "template: unsupported by the kastell test shim: $format" ;;
            esac
        done
        ;;
    create)
        while [ $# -gt 0 ]; do
            case $1 in
            -l | --label | -d | --driver | --template-driver) shift 2 ;;
            --*=*) shift ;;
            -) break ;;
            -*) die "unknown flag: $1 (kastell test shim)" ;;
            *) break ;;
            esac
        done
        [ $# -eq 2 ] || die '"docker secret create" requires exactly 2 arguments.'
        n=$1
        case $n in '' | *[!A-Za-z0-9_.-]*) die "Error response from daemon: rpc error: code = InvalidArgument desc = invalid name $n" ;; esac
        [ ! -e "$SWARM/secrets/$n.id" ] || die "Error response from daemon: rpc error: code = AlreadyExists desc = secret $n already exists"
        tmp=$(mktemp "$SWARM/secrets/.new.XXXXXX") || die "kastell shim: cannot write the secret"
        if [ "$2" = - ]; then cat >"$tmp"; else cat -- "$2" >"$tmp" || { rm -f "$tmp"; die "open $2: no such file or directory"; }; fi
        if [ ! -s "$tmp" ]; then
            rm -f "$tmp"
            die "Error response from daemon: rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes"
        fi
        chmod 666 "$tmp"
        mv "$tmp" "$SWARM/secrets/$n.value"
        id=$(new_id)
        printf '%s\n' "$id" >"$SWARM/secrets/$n.id"
        chmod 666 "$SWARM/secrets/$n.id"
        printf '%s\n' "$id"
        ;;
    rm | remove)
        [ $# -ge 1 ] || die '"docker secret rm" requires at least 1 argument.'
        for n; do
            [ -e "$SWARM/secrets/$n.id" ] || die "Error response from daemon: secret $n not found"
            [ -z "$(mounted_id "$n")" ] || die "Error response from daemon: rpc error: code = InvalidArgument desc = secret '$n' is in use by the following service: $APP_SERVICE"
            rm -f "$SWARM/secrets/$n.id" "$SWARM/secrets/$n.value"
            printf '%s\n' "$n"
        done
        ;;
    inspect)
        [ $# -ge 1 ] || die '"docker secret inspect" requires at least 1 argument.'
        for n; do
            [ -e "$SWARM/secrets/$n.id" ] || die "Error response from daemon: secret $n not found"
            printf '[{"ID":"%s","Spec":{"Name":"%s","Labels":{}}}]\n' "$(cat "$SWARM/secrets/$n.id")" "$n"
        done
        ;;
    *) die "docker secret $sub: unsupported by the kastell test shim" ;;
    esac
}

docker_service() {
    [ "$FLAVOUR" = dokploy ] || not_swarm
    [ $# -ge 1 ] || die '"docker service" requires a subcommand'
    sub=$1
    shift
    case $sub in
    scale) ;;
    inspect) service_inspect "$@"; return ;;
    update) service_update "$@"; return ;;
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
        *) set_service "$name" "$value" || app_scale "$name" "$value" || die "Error response from daemon: service $name not found" ;;
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
secret) docker_secret "$@" ;;
pause | unpause | stop | start) docker_app_state "$command" "$@" ;;
*) die "docker: '$command' is not a docker command supported by the kastell test shim" ;;
esac
