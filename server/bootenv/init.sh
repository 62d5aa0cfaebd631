#!/bin/sh
# /init of the kickswarm boot environment (busybox sh, PID 1 of the initrd that
# `kickswarm bootenv build` makes). It mounts the kernel file systems, loads the
# modules the hardware asks for, brings the boot NIC up with DHCP and runs
# kickswarm-install; see docs/boot-environment.md.
#
# Kernel command line words it reads:
#   BOOTIF=01-aa-bb-..           the NIC PXELINUX booted from (ipappend 2)
#   kickswarm.frontend=URL       the frontend (required)
#   ks=URL                       the kickstart URL (shown; the installer asks kickstart.cgi)
#   kickswarm.action=install|capture
#   kickswarm.capture_image=NAME kickswarm.capture_source=DEV   (capture)
#   kickswarm.session=TOKEN      passed to the installer when it knows --session
#   kickswarm.onfail=reboot|shell|halt   after a failure (default reboot after 60 s)
#   kickswarm.dhcp_timeout=S     seconds to try DHCP per NIC (default 60)
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH HOME=/root TERM=linux KICKSWARM_LOG_FORMAT=plain

mkdir -p /proc /sys /dev /run /tmp /root /etc
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /dev/shm 2>/dev/null
echo 0 > /proc/sys/kernel/printk 2>/dev/null
CMDLINE=$(cat /proc/cmdline)

# Every console named on the command line gets every line (tty0 and ttyS0 both).
CONSOLES=
for w in $CMDLINE; do
  case "$w" in console=*) c=${w#console=}; c=${c%%,*}; [ -c "/dev/$c" ] && CONSOLES="$CONSOLES /dev/$c" ;; esac
done
[ -n "$CONSOLES" ] || CONSOLES=/dev/console
say() {
  for c in $CONSOLES; do echo "kickswarm: $*" > "$c" 2>/dev/null; done
}
# Copies a stream to every console, line by line.
show() {
  while IFS= read -r line; do
    for c in $CONSOLES; do echo "$line" > "$c" 2>/dev/null; done
  done
}

BOOTIF= FRONTEND= KS= ACTION=install ONFAIL=reboot SESSION= CAPTURE_IMAGE= CAPTURE_SOURCE= DHCP_TIMEOUT=60
for w in $CMDLINE; do
  case "$w" in
    BOOTIF=*) BOOTIF=${w#BOOTIF=} ;;
    kickswarm.frontend=*) FRONTEND=${w#kickswarm.frontend=} ;;
    ks=*) KS=${w#ks=} ;;
    kickswarm.action=*) ACTION=${w#kickswarm.action=} ;;
    kickswarm.onfail=*) ONFAIL=${w#kickswarm.onfail=} ;;
    kickswarm.session=*) SESSION=${w#kickswarm.session=} ;;
    kickswarm.capture_image=*) CAPTURE_IMAGE=${w#kickswarm.capture_image=} ;;
    kickswarm.capture_source=*) CAPTURE_SOURCE=${w#kickswarm.capture_source=} ;;
    kickswarm.dhcp_timeout=*) DHCP_TIMEOUT=${w#kickswarm.dhcp_timeout=} ;;
  esac
done

# After a failure: reboot into another try, a shell for debugging, or halt.
fail() {
  say "FAILED: $*"
  case "$ONFAIL" in
    shell)
      say "kickswarm.onfail=shell: opening a shell (exit it to reboot)"
      for c in $CONSOLES; do setsid sh -c "exec sh -i <$c >$c 2>&1" & done
      wait
      ;;
    halt)
      say "kickswarm.onfail=halt: halting"
      sync; poweroff -f
      ;;
    *)
      say "rebooting in 60 s for another try (kickswarm.onfail=shell keeps this node for debugging)"
      sleep 60
      ;;
  esac
  sync; reboot -f
  sleep 3600
}

say "boot environment $(cat /etc/kickswarm-bootenv 2>/dev/null) on kernel $(uname -r)"

say "loading modules for the hardware found"
for pass in 1 2 3; do
  # shellcheck disable=SC2046
  modprobe -q -a $(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u) 2>/dev/null
done
for m in af_packet ext4 crc32c_generic vfat nls_cp437 nls_iso8859_1 loop; do modprobe -q "$m" 2>/dev/null; done

mac_of_bootif() { echo "$1" | sed -n 's/^01-//; s/-/:/g; /^\([0-9a-fA-F][0-9a-fA-F]:\)\{5\}[0-9a-fA-F][0-9a-fA-F]$/p' | tr 'A-F' 'a-f'; }
MAC=
[ -n "$BOOTIF" ] && MAC=$(mac_of_bootif "$BOOTIF")
[ -n "$BOOTIF" ] && [ -z "$MAC" ] && say "ignoring a malformed BOOTIF=$BOOTIF"

# The NIC with the boot MAC (drivers may still be binding), else every NIC in turn.
find_nics() {
  for n in /sys/class/net/*; do
    i=${n##*/}
    [ "$i" = lo ] && continue
    [ -e "$n/device" ] || continue
    if [ -n "$MAC" ]; then [ "$(cat "$n/address")" = "$MAC" ] && echo "$i"; else echo "$i"; fi
  done
}
NICS=
t=0
while [ $t -lt 30 ]; do
  NICS=$(find_nics)
  [ -n "$NICS" ] && break
  sleep 1; t=$((t + 1))
done
[ -n "$NICS" ] || fail "no network interface ${MAC:+with MAC $MAC }appeared (drivers: kickswarm bootenv build --modules-extra)"

mkdir -p /usr/share/udhcpc
cat > /usr/share/udhcpc/default.script <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast $broadcast} dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    : > /etc/resolv.conf
    [ -n "$domain" ] && echo "search $domain" >> /etc/resolv.conf
    for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
    [ -n "$hostname" ] && hostname "$hostname"
    echo "$interface $ip" > /run/kickswarm-net
    ;;
esac
exit 0
EOF
chmod 755 /usr/share/udhcpc/default.script
ip link set lo up
IFACE=
for i in $NICS; do
  say "DHCP on $i ($(cat /sys/class/net/$i/address))"
  ip link set "$i" up
  rm -f /run/kickswarm-net
  udhcpc -i "$i" -s /usr/share/udhcpc/default.script -q -f -n -t "$DHCP_TIMEOUT" -T 1 -A 1 >/tmp/udhcpc.log 2>&1
  if [ -s /run/kickswarm-net ]; then IFACE=$i; break; fi
  tail -n 3 /tmp/udhcpc.log | show
done
[ -n "$IFACE" ] || fail "no DHCP answer on $NICS"
[ -n "$MAC" ] || MAC=$(cat /sys/class/net/$IFACE/address)
say "network up: $(cat /run/kickswarm-net) ($MAC)"

[ -n "$FRONTEND" ] || fail "no kickswarm.frontend= on the kernel command line"
say "frontend $FRONTEND${KS:+, kickstart $KS}"

SESSION_ARGS=
if [ -n "$SESSION" ]; then
  if kickswarm-install run --help 2>/dev/null | grep -q -- '--session'; then SESSION_ARGS="--session $SESSION"; else say "this installer has no --session: install session not passed on"; fi
fi

case "$ACTION" in
  capture)
    [ -n "$CAPTURE_IMAGE" ] || fail "kickswarm.action=capture needs kickswarm.capture_image=NAME"
    if [ -z "$CAPTURE_SOURCE" ]; then
      for d in /dev/sda /dev/vda /dev/nvme0n1 /dev/xvda; do [ -b "$d" ] && { CAPTURE_SOURCE=$d; break; }; done
    fi
    [ -n "$CAPTURE_SOURCE" ] || fail "no disk to capture (give kickswarm.capture_source=DEV)"
    say "capturing $CAPTURE_SOURCE as image $CAPTURE_IMAGE"
    set -- capture --frontend "$FRONTEND" --source "$CAPTURE_SOURCE" --image "$CAPTURE_IMAGE"
    ;;
  install)
    say "installing"
    # shellcheck disable=SC2086
    set -- run --frontend "$FRONTEND" --mac "$MAC" $SESSION_ARGS
    ;;
  *) fail "unknown kickswarm.action=$ACTION (want install or capture)" ;;
esac

# The installer reboots or kexecs on its own after a successful install.
( kickswarm-install "$@" 2>&1; echo $? > /tmp/kickswarm-rc ) | show
rc=$(cat /tmp/kickswarm-rc 2>/dev/null)
if [ "$rc" = 0 ]; then
  say "$ACTION finished"
  [ "$ACTION" = capture ] && { sync; say "rebooting"; reboot -f; }
  fail "the installer ended without rebooting"
fi
fail "kickswarm-install $1 exited with status ${rc:-unknown}"
