# The database tools of the fake app containers (mysqldump, mysql,
# mysqladmin and MariaDB's mariadb-dump, mariadb, mariadb-admin; mongodump,
# mongorestore, mongosh; redis-cli), run by `docker exec` with
# KASTELL_SHIM_CTR set to the container's directory. They keep the data as
# files and round-trip its bytes: a MySQL's or MariaDB's database is
# data/mysql.sql, a MongoDB's data/mongo.archive, a Redis's dataset is
# data/memory and its RDB file data/dump.rdb.

die() {
    printf '%s\n' "$1" >&2
    exit "${2:-1}"
}

ctr=${KASTELL_SHIM_CTR:?the fake database tools run only inside a shim container}
data="$ctr/data"
MARK='-- kastell-shim mysqldump'
MONGO_MARK='kastell-shim mongodump archive'

# A MySQL client must bring the root password the container was made with.
mysql_auth() {
    [ "${MYSQL_PWD:-}" = "$(cat "$data/root-password")" ] ||
        die "ERROR 1045 (28000): Access denied for user 'root'@'localhost' (using password: YES)"
}

# A MongoDB client must bring the root user and password the container
# was made with, against the admin database, when it has them.
mongo_auth() {
    [ -f "$data/mongo-user" ] || return 0
    mongo_user='' mongo_pass='' mongo_db=''
    while [ $# -gt 0 ]; do
        case $1 in
        --username) mongo_user=$2; shift 2 ;;
        --password) mongo_pass=$2; shift 2 ;;
        --authenticationDatabase) mongo_db=$2; shift 2 ;;
        *) shift ;;
        esac
    done
    [ "$mongo_user" = "$(cat "$data/mongo-user")" ] && [ "$mongo_pass" = "$(cat "$data/mongo-password")" ] &&
        [ "$mongo_db" = admin ] || die "Failed: error connecting to db server: (Unauthorized) Authentication failed."
}

# Whether the arguments hold $1.
has_flag() {
    flag=$1
    shift
    for a; do [ "$a" = "$flag" ] && return 0; done
    return 1
}

# A Redis client must bring the password the server requires, if any.
redis_auth() {
    if [ -f "$data/requirepass" ] && [ "${REDISCLI_AUTH:-}" != "$(cat "$data/requirepass")" ]; then
        echo "NOAUTH Authentication required."
        exit 0
    fi
}

case ${0##*/} in
mysqldump | mariadb-dump)
    mysql_auth
    has_flag --single-transaction "$@" || die "kastell shim: ${0##*/} without --single-transaction is not consistent"
    printf '%s\n' "$MARK"
    cat "$data/mysql.sql"
    ;;
mongodump)
    mongo_auth "$@"
    has_flag --archive "$@" || die "kastell shim: mongodump writes to stdout only with --archive"
    printf '%s\n' "$MONGO_MARK"
    cat "$data/mongo.archive"
    ;;
mongorestore)
    mongo_auth "$@"
    has_flag --archive "$@" && has_flag --drop "$@" || die "kastell shim: mongorestore needs --archive and --drop here"
    IFS= read -r first || die "Failed: stream or file does not appear to be a mongodump archive"
    [ "$first" = "$MONGO_MARK" ] || die "Failed: stream or file does not appear to be a mongodump archive"
    cat >"$data/mongo.archive.new" && mv "$data/mongo.archive.new" "$data/mongo.archive"
    ;;
mongosh)
    echo 1
    ;;
mysql | mariadb)
    mysql_auth
    IFS= read -r first || die "ERROR: no input"
    [ "$first" = "$MARK" ] || die "ERROR 1064 (42000): You have an error in your SQL syntax (kastell shim)"
    cat >"$data/mysql.sql.new" && mv "$data/mysql.sql.new" "$data/mysql.sql"
    ;;
mysqladmin | mariadb-admin)
    mysql_auth
    echo 'mysqld is alive'
    ;;
redis-cli)
    while [ $# -gt 0 ]; do
        case $1 in --no-auth-warning) shift ;; -a) export REDISCLI_AUTH="$2"; shift 2 ;; *) break ;; esac
    done
    redis_auth
    case "$*" in
    PING) echo PONG ;;
    LASTSAVE) cat "$data/lastsave" ;;
    BGSAVE)
        cp "$data/memory" "$data/dump.rdb.tmp" && mv "$data/dump.rdb.tmp" "$data/dump.rdb"
        echo $(($(cat "$data/lastsave") + 1)) >"$data/lastsave"
        echo 'Background saving started'
        ;;
    'INFO persistence') printf 'rdb_bgsave_in_progress:0\nrdb_last_bgsave_status:ok\n' ;;
    'CONFIG GET dir') printf 'dir\n%s\n' "$data" ;;
    'CONFIG GET dbfilename') printf 'dbfilename\ndump.rdb\n' ;;
    'SHUTDOWN NOSAVE')
        # Swarm (Dokploy) starts a new task at once; plain Docker leaves
        # the container stopped until started.
        if [ "$(cat "$ctr/swarm")" = 1 ]; then
            cp "$data/dump.rdb" "$data/memory"
        else
            printf 'stopped\n' >"$ctr/state.new" && mv "$ctr/state.new" "$ctr/state"
        fi
        ;;
    *) die "kastell shim: redis-cli $*: unsupported" ;;
    esac
    ;;
*) die "kastell shim: ${0##*/} is not a fake database tool" 127 ;;
esac
