set -eu
root={}
if [ ! -d "$root" ]; then echo "restore root $root is not a directory" >&2; exit 21; fi
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
# A dropped connection closes stdout: the next step line raises SIGPIPE,
# which must end the script through the EXIT trap (by default it kills the
# shell outright and leaves $d behind) and before anything is switched.
trap 'exit 129' HUP INT TERM PIPE
step() {
  printf 'KASTELL_STEP %s %s %s\n' "$1" "$2" "$(printf '%s' "$3" | tr '\n\r\t' '   ' | cut -c1-1500)"
}
find_bin() {
  if command -v "$1" 2>/dev/null; then return 0; fi
  for p in /usr/sbin /sbin /usr/local/sbin; do
    if [ -x "$p/$1" ]; then echo "$p/$1"; return 0; fi
  done
  return 1
}
differs() {
  if diff -rq --no-dereference -- "$d/c/$1" "$root/$1" >/dev/null 2>&1; then return 1; fi
  return 0
}
nginx_candidate() {
  n=$d/nginx
  mkdir "$n" || return 1
  if [ -d "$root/etc/nginx" ]; then cp -RP "$root/etc/nginx/." "$n/" || return 1; fi
  cp -RP "$d/c/etc/nginx/." "$n/" || return 1
  find "$n" -type f > "$d/files" || return 1
  while IFS= read -r f; do
    sed -i "s#/etc/nginx/#$n/#g" "$f" || return 1
  done < "$d/files"
  find "$n" -type l > "$d/links" || return 1
  while IFS= read -r l; do
    t=$(readlink "$l") || return 1
    case $t in
      /etc/nginx/*) ln -sfn "$n/${t#/etc/nginx/}" "$l" || return 1 ;;
    esac
  done < "$d/links"
}

cat > "$d/archive.tar"
mkdir "$d/c"
if out=$(tar -C "$d/c" -xf "$d/archive.tar" 2>&1); then
  step unpack ok "$(find "$d/c" ! -type d | wc -l) files"
else
  step unpack failed "$out"
  exit 20
fi

if [ -f "$d/c/etc/ssh/sshd_config" ]; then
  if sshd_bin=$(find_bin sshd); then
    if out=$("$sshd_bin" -t -f "$d/c/etc/ssh/sshd_config" 2>&1); then
      step validate-sshd ok "sshd -t accepted the restored sshd_config"
    else
      step validate-sshd failed "$out"
      exit 10
    fi
  else
    step validate-sshd skipped "sshd is not installed"
  fi
fi

if [ -d "$d/c/etc/nginx" ]; then
  if nginx_bin=$(find_bin nginx); then
    if ! out=$(nginx_candidate 2>&1); then
      step validate-nginx failed "could not prepare the candidate configuration: $out"
      exit 11
    fi
    if [ -f "$d/nginx/nginx.conf" ]; then
      if out=$("$nginx_bin" -t -q -c "$d/nginx/nginx.conf" 2>&1); then
        step validate-nginx ok "nginx -t accepted the restored configuration"
      else
        step validate-nginx failed "$out"
        exit 11
      fi
    else
      step validate-nginx skipped "no nginx.conf to test"
    fi
  else
    step validate-nginx skipped "nginx is not installed"
  fi
fi

ssh_changed=no; nginx_changed=no; f2b_changed=no; ufw_changed=no
if [ -e "$d/c/etc/ssh/sshd_config" ] && differs etc/ssh/sshd_config; then ssh_changed=yes; fi
if [ -e "$d/c/etc/nginx" ] && differs etc/nginx; then nginx_changed=yes; fi
if [ -e "$d/c/etc/fail2ban" ] && differs etc/fail2ban; then f2b_changed=yes; fi
if [ -e "$d/c/etc/ufw" ] && differs etc/ufw; then ufw_changed=yes; fi

if out=$(tar -C "$root" -xf "$d/archive.tar" 2>&1); then
  step switch ok "restored into $root"
else
  step switch failed "$out"
  exit 12
fi

failed=0
if command -v systemctl >/dev/null 2>&1; then have_systemctl=yes; else have_systemctl=no; fi
reload_unit() {
  sid=$1; changed=$2; bin=$3; shift 3
  if [ "$changed" != yes ]; then step "$sid" skipped "configuration unchanged"; return 0; fi
  if ! find_bin "$bin" >/dev/null; then step "$sid" skipped "$bin is not installed"; return 0; fi
  if [ "$have_systemctl" != yes ]; then
    step "$sid" skipped "no systemctl on this server: reload it by hand"
    return 0
  fi
  out=""
  for unit in "$@"; do
    if out=$(systemctl try-reload-or-restart "$unit" 2>&1); then
      step "$sid" ok "systemctl try-reload-or-restart $unit"
      return 0
    fi
  done
  step "$sid" failed "$out"
  failed=1
}
if [ -e "$d/c/etc/ssh/sshd_config" ]; then
  reload_unit reload-ssh "$ssh_changed" sshd ssh.service sshd.service
fi
if [ -e "$d/c/etc/nginx" ]; then
  reload_unit reload-nginx "$nginx_changed" nginx nginx.service
fi
if [ -e "$d/c/etc/fail2ban" ]; then
  reload_unit reload-fail2ban "$f2b_changed" fail2ban-server fail2ban.service
fi
if [ -e "$d/c/etc/ufw" ]; then
  if [ "$ufw_changed" != yes ]; then
    step reload-ufw skipped "configuration unchanged"
  elif ufw_bin=$(find_bin ufw); then
    if out=$("$ufw_bin" reload 2>&1); then
      step reload-ufw ok "ufw reload"
    else
      step reload-ufw failed "$out"
      failed=1
    fi
  else
    step reload-ufw skipped "ufw is not installed"
  fi
fi
if [ "$failed" -ne 0 ]; then exit 13; fi
