# Shared functions of the kastell test shims (POSIX sh; sourced, not run).
# Set SHIM_STATE to the state directory before sourcing.

# Appends one line (program and arguments, newlines shown as spaces) to the
# command log and leaves it in $shim_line.
shim_log() {
    shim_line=$1
    shift
    for shim_arg in "$@"; do
        case $shim_arg in
        *'
'*) shim_arg=$(printf '%s' "$shim_arg" | tr '\n' ' ') ;;
        esac
        shim_line="$shim_line $shim_arg"
    done
    printf '%s\n' "$shim_line" >>"$SHIM_STATE/commands.log"
}

# Consumes the oldest injected failure whose key matches the logged line
# (whole words, contiguous; a key ending in " $" must end the line), prints
# its stderr and exits with its status.
shim_fail_check() {
    for shim_flag in "$SHIM_STATE"/fail/*.flag; do
        [ -e "$shim_flag" ] || continue
        shim_key=$(sed -n 1p "$shim_flag")
        shim_match=0
        case $shim_key in
        *' $')
            shim_k=${shim_key% \$}
            case " $shim_line" in *" $shim_k") shim_match=1 ;; esac
            ;;
        *)
            case " $shim_line " in *" $shim_key "*) shim_match=1 ;; esac
            ;;
        esac
        [ "$shim_match" = 1 ] || continue
        shim_taken="$shim_flag.taken.$$"
        mv "$shim_flag" "$shim_taken" 2>/dev/null || continue
        shim_code=$(sed -n 2p "$shim_taken")
        sed -n '3,$p' "$shim_taken" >&2
        rm -f "$shim_taken"
        exit "$shim_code"
    done
}

# Logs this call, then applies any injected failure.
shim_begin() {
    shim_log "$@"
    shim_fail_check
}

# Prints the value of KEY from the state file.
state_get() {
    sed -n "s/^$1=//p" "$SHIM_STATE/state" | head -n 1
}

# Sets KEY to VALUE in the state file (atomically, under a lock).
state_set() {
    (
        flock 9 || exit 1
        shim_tmp=$(mktemp "$SHIM_STATE/.state.XXXXXX") || exit 1
        { grep -v "^$1=" "$SHIM_STATE/state" || true; printf '%s=%s\n' "$1" "$2"; } >"$shim_tmp" &&
            chmod 666 "$shim_tmp" && mv "$shim_tmp" "$SHIM_STATE/state"
    ) 9>>"$SHIM_STATE/state.lock" || {
        echo "kastell shim: cannot update the state file" >&2
        exit 1
    }
}

# Prints VERSION with its last numeric component increased by one
# (4.0.0-beta.400 -> 4.0.0-beta.401, v0.21.4 -> v0.21.5, 7 -> 8, x -> x.1).
shim_bump() {
    shim_tail=${1##*.}
    case $shim_tail in
    '' | *[!0-9]*) printf '%s.1\n' "$1" ;;
    *)
        if [ "$shim_tail" = "$1" ]; then
            printf '%s\n' "$(($1 + 1))"
        else
            printf '%s.%s\n' "${1%.*}" "$((shim_tail + 1))"
        fi
        ;;
    esac
}
