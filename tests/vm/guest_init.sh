#!/bin/busybox sh
# PID 1 of the test VM: load modules, put a tmpfs overlay on the host's / (9p, read-only),
# mount the read-write share at its host path, chroot and run the guest agent; power off after.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for ko in $(cat /modules); do
    insmod "/lib/modules/$ko" || echo "tcpvs-vm: insmod $ko failed"
done

p9=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /host /rw /ovl /newroot
mount -t 9p -o "$p9,ro,cache=loose" hostroot /host
mount -t 9p -o "$p9" shared /rw
# SHARED (host path of the share), MODDIR (host path of the kernel's modules), PYTHON, AGENT,
# GUEST_PATH: written by the host for this boot.
. /rw/boot.env

mount -t tmpfs -o mode=0755 overlay-upper /ovl
mkdir /ovl/upper /ovl/work
mount -t overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work overlay /newroot
mount -t proc proc /newroot/proc
mount -t sysfs sys /newroot/sys
mount -t devtmpfs dev /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs shm /newroot/dev/shm
mount -t tmpfs run /newroot/run
mkdir -p "/newroot$SHARED" "/newroot/lib/modules/$(uname -r)"
mount --move /rw "/newroot$SHARED"
# modprobe inside the guest (and the kernel's own module requests) use this kernel's modules
mount --bind "/newroot$MODDIR" "/newroot/lib/modules/$(uname -r)"
printf '#!/bin/sh\nexec chroot /newroot /sbin/modprobe "$@"\n' > /bin/modprobe-guest
chmod 755 /bin/modprobe-guest
echo /bin/modprobe-guest > /proc/sys/kernel/modprobe
hostname tcpvs-vm
ip link set lo up

chroot /newroot /usr/bin/env -i PATH="$GUEST_PATH" HOME=/root LANG=C.UTF-8 \
    "$PYTHON" -I -S "$AGENT" "$SHARED/boot.json"
echo "tcpvs-vm: guest agent exited with status $?"
poweroff -f
