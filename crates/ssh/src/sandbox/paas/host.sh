# The sandbox's fake Coolify and Dokploy hosts (sourced by the sandbox's
# docker shim, its platform installers and its app seeder; STATE, ROOTS,
# PAAS and host_ip are set). A host with the platform installed keeps,
# under $PAAS/hosts/<address>/, what a test shim keeps in its state
# directory (see docker.sh and docker_apps.sh: vars, state, commands.log,
# fail/, apps/, swarm/) and pg/: its own PostgreSQL cluster, a copy of
# $PAAS/template started with pg_ctl, listening only on the unix socket in
# pg/run. A host without that directory has no Docker. Apps' containers
# exist once the platform deployed them: the seeder's, or through the
# platform's API (api.sh), never by themselves when its database is back.

# A fresh hex string of $1 random bytes.
paas_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

# Whether $1 is a plain name (what a container, volume, role or database
# name may be here): letters, digits, '-', '_', '.', not starting with '.'
# or '-'. Everything read back from the platform's tables is checked.
paas_plain() {
    case $1 in '' | .* | -* | *[!A-Za-z0-9_.-]*) return 1 ;; esac
    return 0
}

# psql as the cluster's superuser on database $1 ($PG_* set), stopping at
# the first error.
paas_psql() {
    paas_db=$1
    shift
    "$PG_BIN/psql" -h "$PG_SOCKET" -p "$PG_PORT" -U postgres -d "$paas_db" -qAt -v ON_ERROR_STOP=1 "$@"
}

# The cluster every host copies, made once (under a lock) by the first
# install.
paas_template() {
    [ -d "$PAAS/template" ] && return 0
    (
        flock 8 || exit 1
        [ -d "$PAAS/template" ] && exit 0
        rm -rf "$PAAS/template.new"
        "$PG_BIN/initdb" -D "$PAAS/template.new" -A trust -U postgres -E UTF8 --locale=C --no-sync \
            >"$PAAS/template.log" 2>&1 || { cat "$PAAS/template.log" >&2; exit 1; }
        mv "$PAAS/template.new" "$PAAS/template"
    ) 8>>"$PAAS/template.lock"
}

# Writes $1 (relative to this host's root) with the rest of the arguments
# as its lines.
paas_file() {
    paas_path="$ROOTS/$(host_ip)/$1"
    shift
    mkdir -p "$(dirname "$paas_path")" && printf '%s\n' "$@" >"$paas_path"
}

# The platform's files, as its installer leaves them.
paas_seed_root() {
    case $FLAVOUR in
    coolify)
        paas_file data/coolify/source/.env '# Coolify (kastell sandbox)' "APP_ID=$(paas_hex 8)" \
            "APP_KEY=base64:$(paas_hex 32)" 'DB_USERNAME=coolify' "DB_PASSWORD=$(paas_hex 12)"
        paas_file data/coolify/source/docker-compose.yml '# Coolify (kastell sandbox)' 'services:' \
            '  coolify:' '    image: ghcr.io/coollabsio/coolify' '  postgres:' \
            '    image: postgres:15-alpine' '    container_name: coolify-db'
        paas_file data/coolify/source/docker-compose.prod.yml '# Coolify (kastell sandbox)' \
            'services:' '  coolify:' '    restart: always'
        paas_file data/coolify/ssh/keys/id.root@host.docker.internal \
            '-----BEGIN OPENSSH PRIVATE KEY-----' 'kastell sandbox: not a key' \
            '-----END OPENSSH PRIVATE KEY-----'
        ;;
    dokploy)
        paas_file etc/dokploy/dokploy.yml '# Dokploy (kastell sandbox)' 'http:' '  routers:' \
            '    dokploy-router-app:' '      rule: Host(`dokploy.sandbox.test`)'
        paas_file etc/dokploy/traefik/traefik.yml '# Dokploy (kastell sandbox)' 'entryPoints:' \
            '  web:' "    address: ':80'"
        printf 'NODE_ENV=production\nPORT=3000\nTZ=UTC\n' >"$SHIM_STATE/swarm/service-env"
        paas_secret=$(paas_hex 13 | cut -c1-25)
        printf '%s' "$(paas_hex 16)" >"$SHIM_STATE/swarm/secrets/dokploy-auth-secret.value"
        printf '%s\n' "$paas_secret" >"$SHIM_STATE/swarm/secrets/dokploy-auth-secret.id"
        printf '%s dokploy-auth-secret\n' "$paas_secret" >"$SHIM_STATE/swarm/service-secrets"
        ;;
    esac
}

# The platform's own users and API credentials, as its migrations and
# first start leave them: Coolify's root user and team (id 0) and its
# Sanctum tokens; Dokploy's owner, organization and better-auth API keys.
paas_auth_tables() {
    case $FLAVOUR in
    coolify)
        paas_psql coolify -c "
CREATE TABLE users (id bigint PRIMARY KEY, name text, email text);
INSERT INTO users VALUES (0, 'Root User', 'root@sandbox.test');
CREATE TABLE teams (id bigint PRIMARY KEY, name text, personal_team boolean);
INSERT INTO teams VALUES (0, 'Root Team', true);
CREATE TABLE personal_access_tokens (id bigserial PRIMARY KEY, tokenable_type text NOT NULL, tokenable_id bigint NOT NULL, name text NOT NULL, token varchar(64) NOT NULL UNIQUE, abilities text, last_used_at timestamp, expires_at timestamp, created_at timestamp, updated_at timestamp, team_id text);"
        ;;
    *)
        paas_psql dokploy -c "
CREATE TABLE \"user\" (id text PRIMARY KEY, name text, email text);
INSERT INTO \"user\" VALUES ('u-owner', 'Owner', 'owner@sandbox.test');
CREATE TABLE organization (id text PRIMARY KEY, name text NOT NULL, owner_id text NOT NULL, created_at timestamp NOT NULL DEFAULT now());
INSERT INTO organization (id, name, owner_id) VALUES ('o-main', 'Main', 'u-owner');
CREATE TABLE member (id text PRIMARY KEY, organization_id text NOT NULL, user_id text NOT NULL, role text NOT NULL, created_at timestamp NOT NULL DEFAULT now());
INSERT INTO member (id, organization_id, user_id, role) VALUES ('m-owner', 'o-main', 'u-owner', 'owner');
CREATE TABLE apikey (id text PRIMARY KEY, name text, start text, prefix text, key text NOT NULL, config_id text NOT NULL DEFAULT 'default', reference_id text NOT NULL, refill_interval integer, refill_amount integer, last_refill_at timestamp, enabled boolean, rate_limit_enabled boolean, rate_limit_time_window integer, rate_limit_max integer, request_count integer, remaining integer, last_request timestamp, expires_at timestamp, created_at timestamp NOT NULL, updated_at timestamp NOT NULL, permissions text, metadata text);"
        ;;
    esac
}

# The platform installer (`bash install.sh [update]`, fetched by curl from
# the platform's URL). On a host without the platform: a fresh install,
# its own database cluster started, the platform's role and database, its
# files, no apps. On a host with it: an update to the next version (as the
# test shim's installer; Dokploy's refuses to run without `update` there).
paas_install() {
    paas_ip=$(host_ip)
    SHIM_STATE="$PAAS/hosts/$paas_ip"
    echo "Welcome to the $PRODUCT installer (kastell sandbox)."
    if [ -f "$SHIM_STATE/vars" ]; then
        . "$PAAS/lib.sh"
        shim_begin install.sh "$@"
        if [ "$FLAVOUR" = dokploy ] && [ "${1-}" != update ]; then
            echo "Error: ports 80 and 443 are already in use: a fresh install cannot run on an existing server (run it with 'update')." >&2
            exit 1
        fi
        paas_old=$(state_get version)
        paas_new=$(shim_bump "$paas_old")
        state_set version "$paas_new"
        state_set app running
        state_set db running
        echo "$PRODUCT upgraded from $paas_old to $paas_new."
        return 0
    fi
    mkdir -p "$SHIM_STATE/fail" "$SHIM_STATE/apps" "$SHIM_STATE/pg/run" \
        "$SHIM_STATE/swarm/secrets" "$SHIM_STATE/swarm/fs" || exit 1
    for paas_f in commands.log state state.lock swarm/service-env swarm/service-secrets; do
        : >"$SHIM_STATE/$paas_f" || exit 1
    done
    . "$PAAS/lib.sh"
    shim_begin install.sh "$@"
    PG_BIN=$(cat "$PAAS/pg-bin") || exit 1
    PG_SOCKET="$SHIM_STATE/pg/run"
    PG_PORT=5432
    echo "Installing Docker and $PRODUCT..."
    paas_template || exit 1
    cp -R "$PAAS/template" "$SHIM_STATE/pg/data" && chmod 700 "$SHIM_STATE/pg/data" || exit 1
    "$PG_BIN/pg_ctl" -D "$SHIM_STATE/pg/data" -l "$SHIM_STATE/pg/log" -w -t 60 -s \
        -o "-k $PG_SOCKET -p $PG_PORT -c listen_addresses= -c unix_socket_permissions=0777 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=16MB -c max_connections=40" \
        start || { cat "$SHIM_STATE/pg/log" >&2; exit 1; }
    paas_psql postgres -c "CREATE ROLE $FLAVOUR LOGIN SUPERUSER" -c "CREATE DATABASE $FLAVOUR OWNER $FLAVOUR" || exit 1
    paas_auth_tables || exit 1
    paas_task=$(paas_hex 13 | cut -c1-25)
    case $FLAVOUR in
    coolify)
        set -- coolify coolify coolify-db postgres ghcr.io/coollabsio/coolify postgres:15-alpine 4.0.0-beta.400
        ;;
    *)
        set -- "dokploy.1.$paas_task" dokploy "dokploy-postgres.1.$paas_task" dokploy-postgres \
            dokploy/dokploy postgres:16 v0.21.4
        ;;
    esac
    paas_app_id=$(paas_hex 32)
    paas_db_id=$(paas_hex 32)
    {
        printf "FLAVOUR='%s'\nPG_BIN='%s'\nPG_SOCKET='%s'\nPG_PORT=%s\n" "$FLAVOUR" "$PG_BIN" "$PG_SOCKET" "$PG_PORT"
        printf "APP_ID='%s'\nAPP_SHORT='%.12s'\nAPP_NAME='%s'\nAPP_SERVICE='%s'\nAPP_IMAGE='%s'\n" \
            "$paas_app_id" "$paas_app_id" "$1" "$2" "$5"
        printf "DB_ID='%s'\nDB_SHORT='%.12s'\nDB_NAME='%s'\nDB_SERVICE='%s'\nDB_IMAGE='%s'\n" \
            "$paas_db_id" "$paas_db_id" "$3" "$4" "$6"
        printf "SHIM_APPTOOLS='%s'\n" "$PAAS/apptools"
    } >"$SHIM_STATE/vars.new" || exit 1
    state_set version "$7"
    state_set app running
    state_set db running
    paas_seed_root || exit 1
    mv "$SHIM_STATE/vars.new" "$SHIM_STATE/vars" || exit 1
    echo "$PRODUCT $7 installed."
}

# The platform's records of its apps, one `kind|key|user|database|extra`
# line each: a database resource (extra: a MySQL's root password) or an
# application (extra: its Docker volumes, space-separated). A table the
# platform lacks is no apps.
paas_app_rows() {
    case $FLAVOUR in
    coolify)
        set -- "SELECT 'postgres', uuid, postgres_user, postgres_db, '' FROM standalone_postgresqls" \
            "SELECT 'mysql', uuid, '', mysql_database, mysql_root_password FROM standalone_mysqls" \
            "SELECT 'app', a.uuid, '', '', coalesce(string_agg(v.name, ' '), '') FROM applications a LEFT JOIN local_persistent_volumes v ON v.resource_id = a.id AND v.host_path IS NULL GROUP BY a.uuid"
        ;;
    *)
        set -- "SELECT 'postgres', \"appName\", \"databaseUser\", \"databaseName\", '' FROM postgres" \
            "SELECT 'mysql', \"appName\", '', \"databaseName\", \"databaseRootPassword\" FROM mysql" \
            "SELECT 'app', a.\"appName\", '', '', coalesce(string_agg(m.\"volumeName\", ' '), '') FROM application a LEFT JOIN mount m ON m.\"applicationId\" = a.\"applicationId\" AND m.type = 'volume' GROUP BY a.\"appName\""
        ;;
    esac
    for paas_q; do
        "$PG_BIN/psql" -h "$PG_SOCKET" -p "$PG_PORT" -U postgres -d "$FLAVOUR" -qAt -F '|' -c "$paas_q" 2>/dev/null
    done
}

# Whether an app container of service $1 exists.
paas_deployed() {
    for paas_d in "$APPS"/*/; do
        [ -f "$paas_d/service" ] && [ "$(cat "$paas_d/service")" = "$1" ] && return 0
    done
    return 1
}

# Creates the running container of one record (paas_app_rows' fields): a
# PostgreSQL gets its role and database in the host's cluster (empty, as a
# new database container starts), a MySQL an empty database, an
# application its volumes (empty). Names that are not plain are skipped.
paas_deploy() {
    paas_plain "$2" || return 0
    paas_task=$(paas_hex 13 | cut -c1-25)
    case $FLAVOUR:$1 in
    dokploy:*) paas_n="$2.1.$paas_task" paas_sw=1 ;;
    coolify:app) paas_n="$2-$(printf '%.12s' "$paas_task")" paas_sw=0 ;;
    *) paas_n=$2 paas_sw=0 ;;
    esac
    paas_c="$APPS/$paas_n"
    mkdir -p "$paas_c/data" || return 1
    : >"$paas_c/env"
    : >"$paas_c/volumes"
    case $1 in
    postgres)
        paas_plain "$3" && paas_plain "$4" || return 0
        paas_psql postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$3') THEN CREATE ROLE \"$3\" LOGIN; END IF; END \$\$" >/dev/null || return 1
        if [ -z "$(paas_psql postgres -c "SELECT 1 FROM pg_database WHERE datname = '$4'")" ]; then
            paas_psql postgres -c "CREATE DATABASE \"$4\" OWNER \"$3\"" || return 1
        fi
        printf 'POSTGRES_USER=%s\nPOSTGRES_DB=%s\n' "$3" "$4" >"$paas_c/env"
        ;;
    mysql)
        paas_plain "$4" && paas_plain "$5" || return 0
        printf '%s' "$5" >"$paas_c/data/root-password"
        : >"$paas_c/data/mysql.sql"
        printf 'MYSQL_ROOT_PASSWORD=%s\nMYSQL_DATABASE=%s\n' "$5" "$4" >"$paas_c/env"
        ;;
    app)
        for paas_v in $5; do
            paas_plain "$paas_v" || continue
            printf '%s\n' "$paas_v" >>"$paas_c/volumes"
            mkdir -p "$ROOTS/$(host_ip)/var/lib/docker/volumes/$paas_v/_data" || return 1
        done
        ;;
    esac
    printf '%s\n' "$1" >"$paas_c/kind"
    printf '%s\n' "$2" >"$paas_c/service"
    printf '%s\n' "$paas_sw" >"$paas_c/swarm"
    printf 'running\n' >"$paas_c/state"
    paas_hex 32 >"$paas_c/id"
}

# Deploys every app the platform's tables record that has no container
# yet, under a lock: what the platform did when the user created them (the
# seeder). A host recovered from a backup gets its containers only when
# the platform is asked to deploy each one through its API (api.sh).
paas_deploy_all() {
    [ "$(state_get db)" = running ] || return 0
    mkdir -p "$APPS"
    (
        flock 7 || exit 1
        paas_app_rows | while IFS='|' read -r paas_kind paas_key paas_user paas_dbname paas_extra; do
            paas_deployed "$paas_key" && continue
            paas_deploy "$paas_kind" "$paas_key" "$paas_user" "$paas_dbname" "$paas_extra" || exit 1
        done
    ) 7>>"$SHIM_STATE/apps.lock"
}

# An injected fault (FakeHosts::drift_on_start): an app container started
# again appends a line to the file $PAAS/common/drift names in each of its
# volumes, as an app that rewrites its data when it starts would.
app_started() {
    [ -f "$PAAS/common/drift" ] || return 0
    paas_f=$(cat "$PAAS/common/drift")
    while IFS= read -r paas_v; do
        paas_plain "$paas_v" || continue
        printf 'changed on start\n' >>"$ROOTS/$(host_ip)/var/lib/docker/volumes/$paas_v/_data/$paas_f"
    done <"$1/volumes"
}

# An injected health check (FakeHosts::set_app_health): an app container
# of a service $PAAS/common/health names (`KEY STATUS...` lines) and with
# no health file yet gets that status, as if it declared a health check.
app_health_seed() {
    [ ! -f "$1/health" ] && [ -f "$PAAS/common/health" ] || return 0
    paas_h=$(awk -v k="$(cat "$1/service")" '$1 == k { sub(/^[^ ]+ /, ""); print; exit }' "$PAAS/common/health")
    [ -z "$paas_h" ] || printf '%s\n' "$paas_h" >"$1/health"
}

# The demo apps of a sandbox server: a PostgreSQL database with rows, a
# MySQL with a dump's worth of data and an application with files in a
# Docker volume, recorded in the platform's own tables.
paas_seed() {
    paas_pw=$(paas_hex 8)
    case $FLAVOUR in
    coolify)
        paas_psql coolify -c "
CREATE TABLE standalone_postgresqls (id serial PRIMARY KEY, uuid text, name text, postgres_user text, postgres_db text);
INSERT INTO standalone_postgresqls (uuid, name, postgres_user, postgres_db) VALUES ('pgblog0k2m9x', 'blog db', 'blog', 'blog');
CREATE TABLE standalone_mysqls (id serial PRIMARY KEY, uuid text, name text, mysql_root_password text, mysql_database text);
INSERT INTO standalone_mysqls (uuid, name, mysql_root_password, mysql_database) VALUES ('myshop0k2m9x', 'shop db', '$paas_pw', 'shop');
CREATE TABLE applications (id serial PRIMARY KEY, uuid text, name text);
INSERT INTO applications (uuid, name) VALUES ('apsite0k2m9x', 'site');
CREATE TABLE local_persistent_volumes (id serial PRIMARY KEY, name text, mount_path text, host_path text, resource_type text, resource_id int);
INSERT INTO local_persistent_volumes (name, mount_path, resource_type, resource_id) VALUES ('apsite0k2m9x-uploads', '/app/uploads', 'App\\Models\\Application', 1);" || exit 1
        ;;
    *)
        paas_psql dokploy -c "
CREATE TABLE postgres (\"postgresId\" text PRIMARY KEY, \"appName\" text, name text, \"databaseUser\" text, \"databaseName\" text);
INSERT INTO postgres VALUES ('id-pgblog', 'pgblog0k2m9x', 'blog db', 'blog', 'blog');
CREATE TABLE mysql (\"mysqlId\" text PRIMARY KEY, \"appName\" text, name text, \"databaseRootPassword\" text, \"databaseName\" text);
INSERT INTO mysql VALUES ('id-myshop', 'myshop0k2m9x', 'shop db', '$paas_pw', 'shop');
CREATE TABLE application (\"applicationId\" text PRIMARY KEY, \"appName\" text, name text);
INSERT INTO application VALUES ('id-apsite', 'apsite0k2m9x', 'site');
CREATE TABLE mount (\"mountId\" text PRIMARY KEY, type text, \"volumeName\" text, \"hostPath\" text, \"applicationId\" text);
INSERT INTO mount VALUES ('m1', 'volume', 'apsite0k2m9x-uploads', NULL, 'id-apsite');" || exit 1
        ;;
    esac
    paas_deploy_all || exit 1
    paas_psql blog -c "SET ROLE blog;
CREATE TABLE posts (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO posts VALUES (1, 'hello'), (2, 'it''s'), (3, 'world');
CREATE TABLE tags (id int); INSERT INTO tags SELECT generate_series(1, 250);" || exit 1
    for paas_d in "$APPS"/*/; do
        [ "$(cat "$paas_d/service")" = myshop0k2m9x ] || continue
        paas_i=0
        while [ "$paas_i" -lt 500 ]; do
            printf 'INSERT INTO orders VALUES (%s);\n' "$paas_i"
            paas_i=$((paas_i + 1))
        done >"$paas_d/data/mysql.sql"
    done
    paas_v="$ROOTS/$(host_ip)/var/lib/docker/volumes/apsite0k2m9x-uploads/_data"
    mkdir -p "$paas_v/img/2026" || exit 1
    printf '<h1>site</h1>\n' >"$paas_v/index.html"
    head -c 65536 /dev/urandom >"$paas_v/img/2026/photo.jpg"
    : >"$paas_v/img/empty"
    echo "seeded: blog db (PostgreSQL), shop db (MySQL), site (volume apsite0k2m9x-uploads)"
}
