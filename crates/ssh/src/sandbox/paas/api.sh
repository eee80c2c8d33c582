# The platform's HTTP API on 127.0.0.1 of a sandbox host, as kastell calls
# it with curl on the server (sourced by the sandbox's curl shim for
# http://127.0.0.1 URLs once the host's vars, lib.sh, docker_apps.sh and
# host.sh are; SHIM_STATE is the host's state). Only what a recovery asks:
#   Coolify (port 8000): GET /api/v1/deploy?uuid=U (an application) and
#     GET|POST /api/v1/databases/U/start, with `Authorization: Bearer
#     <id>|<token>`, a row of personal_access_tokens (sha256 of <token>,
#     the root user's, not expired);
#   Dokploy (port 3000): POST /api/<kind>.deploy with {"<kind>Id":"..."}
#     (application, postgres, mysql), with `x-api-key: <key>`, a row of
#     apikey (base64url of the key's sha256, enabled, not expired).
# A deploy creates the resource's container as the platform would, its
# data empty. Headers come from -H (`@-`: stdin, `@file`), the answer's
# status from -w's %{http_code}. A key listed in $PAAS/common/deploy-fail
# (FakeHosts::fail_deploy) answers its deploy with a 500 whose message
# carries a terminal escape, as a hostile server might.

api_answer() {
    api_code=$1
    api_body=$2
}

# The token of the request's headers checked against the platform's
# table: 0 when it is valid.
api_authorized() {
    case $FLAVOUR in
    coolify)
        api_tok=$(printf '%s\n' "$api_headers" | sed -n 's/^[Aa]uthorization: Bearer \(.*\)$/\1/p' | head -n 1 | tr -d '\r')
        api_id=${api_tok%%|*}
        api_plain=${api_tok#*|}
        case $api_id in '' | *[!0-9]*) return 1 ;; esac
        case $api_plain in '' | *[!A-Za-z0-9]*) return 1 ;; esac
        api_hash=$(printf '%s' "$api_plain" | sha256sum | cut -d' ' -f1)
        [ "$(paas_psql "$FLAVOUR" -c "SELECT count(*) FROM personal_access_tokens WHERE id = $api_id AND token = '$api_hash' AND tokenable_id = 0 AND (expires_at IS NULL OR expires_at > now())" 2>/dev/null)" = 1 ]
        ;;
    *)
        api_key=$(printf '%s\n' "$api_headers" | sed -n 's/^[Xx]-[Aa]pi-[Kk]ey: \(.*\)$/\1/p' | head -n 1 | tr -d '\r')
        case $api_key in '' | *[!A-Za-z0-9_-]*) return 1 ;; esac
        api_hash=$(printf '%s' "$api_key" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
        [ "$(paas_psql "$FLAVOUR" -c "SELECT count(*) FROM apikey WHERE key = '$api_hash' AND enabled AND (expires_at IS NULL OR expires_at > now())" 2>/dev/null)" = 1 ]
        ;;
    esac
}

# Deploys the resource with key $1 of kind $2 (postgres, mysql, app) as
# the platform's records say, unless its container exists.
api_deploy() {
    if [ -f "$PAAS/common/deploy-fail" ] && grep -qx -- "$1" "$PAAS/common/deploy-fail"; then
        api_answer 500 "{\"message\":\"Deployment of $1 failed: \\u001b[31mno space left on device\\u001b[0m\"}"
        return 1
    fi
    mkdir -p "$APPS"
    (
        flock 7 || exit 1
        paas_deployed "$1" && exit 0
        paas_app_rows | while IFS='|' read -r api_k api_key_ api_u api_d api_x; do
            [ "$api_key_" = "$1" ] && [ "$api_k" = "$2" ] || continue
            paas_deploy "$api_k" "$api_key_" "$api_u" "$api_d" "$api_x" || exit 1
        done
    ) 7>>"$SHIM_STATE/apps.lock" || { api_answer 500 '{"message":"Internal server error"}'; return 1; }
    return 0
}

# The key of the record of $1 (a table) whose $2 (a column) is $3.
api_lookup() {
    paas_plain "$3" || return 0
    paas_psql "$FLAVOUR" -c "SELECT \"$4\" FROM \"$1\" WHERE \"$2\" = '$3'" 2>/dev/null | head -n 1
}

api_route() {
    api_path=${api_url#http://127.0.0.1:*/}
    case $FLAVOUR:$api_method:/$api_path in
    coolify:GET:/api/v1/deploy\?uuid=*)
        api_u=${api_path#*uuid=}
        api_k=$(api_lookup applications uuid "$api_u" uuid)
        [ -n "$api_k" ] || { api_answer 404 '{"message":"No resources found."}'; return; }
        api_deploy "$api_k" app || return
        api_answer 200 "{\"deployments\":[{\"message\":\"Application $api_k deployment queued.\",\"resource_uuid\":\"$api_k\",\"deployment_uuid\":\"$(paas_hex 12)\"}]}"
        ;;
    coolify:GET:/api/v1/databases/*/start | coolify:POST:/api/v1/databases/*/start)
        api_u=${api_path#api/v1/databases/}
        api_u=${api_u%/start}
        for api_t in standalone_postgresqls:postgres standalone_mysqls:mysql; do
            api_k=$(api_lookup "${api_t%%:*}" uuid "$api_u" uuid)
            [ -n "$api_k" ] || continue
            api_deploy "$api_k" "${api_t#*:}" || return
            api_answer 200 '{"message":"Database starting request queued."}'
            return
        done
        api_answer 404 '{"message":"Database not found."}'
        ;;
    dokploy:POST:/api/application.deploy | dokploy:POST:/api/postgres.deploy | dokploy:POST:/api/mysql.deploy)
        api_kind=${api_path#api/}
        api_kind=${api_kind%.deploy}
        api_id=$(printf '%s' "$api_data" | sed -n "s/^{\"${api_kind}Id\":\"\([A-Za-z0-9_.-]*\)\"}\$/\1/p")
        [ -n "$api_id" ] || { api_answer 400 '{"message":"Input validation failed","code":"BAD_REQUEST"}'; return; }
        api_k=$(api_lookup "$api_kind" "${api_kind}Id" "$api_id" appName)
        [ -n "$api_k" ] || { api_answer 404 '{"message":"Not found","code":"NOT_FOUND"}'; return; }
        [ "$api_kind" = application ] && api_kind=app
        api_deploy "$api_k" "$api_kind" || return
        api_answer 200 'true'
        ;;
    *) api_answer 404 '{"message":"Not found"}' ;;
    esac
}

# curl against the host's platform: the arguments kastell passes, the
# answer's body on stdout (or -o's file), then -w with %{http_code}.
paas_api() {
    api_method='' api_url='' api_headers='' api_data='' api_out='' api_write=''
    while [ $# -gt 0 ]; do
        case $1 in
        -X | --request) api_method=$2; shift 2 ;;
        -H | --header)
            case $2 in
            @-) api_h=$(cat) ;;
            @*) api_h=$(cat -- "${2#@}") || exit 26 ;;
            *) api_h=$2 ;;
            esac
            api_headers="$api_headers
$api_h"
            shift 2
            ;;
        -d | --data | --data-binary | --data-raw) api_data=$2; shift 2 ;;
        -o | --output) api_out=$2; shift 2 ;;
        -w | --write-out) api_write=$2; shift 2 ;;
        -m | --max-time | --connect-timeout) shift 2 ;;
        -*) shift ;;
        *) api_url=$1; shift ;;
        esac
    done
    [ -n "$api_method" ] || if [ -n "$api_data" ]; then api_method=POST; else api_method=GET; fi
    case $FLAVOUR in coolify) api_port=8000 ;; *) api_port=3000 ;; esac
    case $api_url in
    "http://127.0.0.1:$api_port/"*) ;;
    *) echo "curl: (7) Failed to connect to ${api_url#http://} after 0 ms: Couldn't connect to server" >&2; exit 7 ;;
    esac
    if [ "$(state_get app)" != running ]; then
        echo "curl: (7) Failed to connect to 127.0.0.1 port $api_port after 0 ms: Couldn't connect to server" >&2
        exit 7
    fi
    if api_authorized; then
        api_route
    else
        api_answer 401 '{"message":"Unauthenticated."}'
    fi
    if [ -n "$api_out" ] && [ "$api_out" != - ]; then
        printf '%s' "$api_body" >"$api_out" || exit 23
    else
        printf '%s' "$api_body"
    fi
    [ -z "$api_write" ] || printf '%b' "$(printf '%s' "$api_write" | sed "s/%{http_code}/$api_code/g")"
    exit 0
}
