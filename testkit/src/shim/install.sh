# A fake platform installer (kastell test shim, not the real script): it
# brings the platform up on the next version. (The header sets SHIM_STATE,
# PRODUCT and NEEDS_UPDATE_ARG and has already logged the call.)

echo "Welcome to the $PRODUCT installer (kastell test shim)."
echo "Checking the operating system, Docker and the existing installation..."
if [ "$NEEDS_UPDATE_ARG" = 1 ] && [ "${1-}" != update ]; then
    echo "Error: ports 80 and 443 are already in use: a fresh install cannot run on an existing server (run it with 'update')." >&2
    exit 1
fi
old=$(state_get version)
new=$(shim_bump "$old")
state_set version "$new"
state_set app running
state_set db running
echo "Pulling the $PRODUCT images ($new)..."
echo "$PRODUCT upgraded from $old to $new."
