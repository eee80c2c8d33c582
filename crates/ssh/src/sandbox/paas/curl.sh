# curl: serves a fake install script for the two platform installer URLs;
# every other URL fails like an HTTP 404 with --fail (exit 22). (Body of a
# shim: the header sets SHIM_STATE and has already logged the call.)

out='' url=''
while [ $# -gt 0 ]; do
    case $1 in
    -o | --output) [ $# -ge 2 ] || { echo "curl: option $1: requires parameter" >&2; exit 2; }; out=$2; shift 2 ;;
    -o?*) out=${1#-o}; shift ;;
    --output=*) out=${1#--output=}; shift ;;
    -m | --max-time | --connect-timeout | --retry | --retry-delay | -H | --header | -A | --user-agent | -w | --write-out | --proto | --tlsv1.2 | -X | --request)
        case $1 in --tlsv1.2) shift ;; *) shift 2 ;; esac ;;
    --*) shift ;;
    -*)
        case $1 in *o) [ $# -ge 2 ] || { echo "curl: option -o: requires parameter" >&2; exit 2; }; out=$2; shift ;; esac
        shift
        ;;
    *) url=$1; shift ;;
    esac
done
case $url in
https://cdn.coollabs.io/coolify/install.sh) script="$SHIM_STATE/coolify-install.sh" ;;
https://dokploy.com/install.sh) script="$SHIM_STATE/dokploy-install.sh" ;;
'') echo "curl: no URL specified!" >&2; exit 2 ;;
*) echo "curl: (22) The requested URL returned error: 404" >&2; exit 22 ;;
esac
if [ -n "$out" ]; then
    cat "$script" >"$out" || { echo "curl: (23) Failure writing output to destination" >&2; exit 23; }
else
    cat "$script"
fi
