"""The cross-check suite: command lines applied by both ipvsadm and pyipvsadm, then listed.

Shared by the host test (for the test names) and the guest runner. A case is a list of steps
(a command line, or (command line, stdin)) run on a clean table; every listing in LISTINGS is
then compared byte for byte. INVALID lines are compared for output and exit status only.
"""

from __future__ import annotations

SYNC_IF = "ipvssync0"  # a veth the runner creates: the guest has no eth0
V4 = "-t 10.10.0.1:80"
V6 = "-t [2001:db8::1]:80"

Step = str | tuple[str, str]

CASES: dict[str, list[Step]] = {
    "tcp-default-wlc": [f"-A {V4}"],
    "tcp-rr": [f"-A {V4} -s rr"],
    "udp-wrr-ops": ["-A -u 10.10.0.1:53 -s wrr -o"],
    "sctp-lc": ["-A --sctp-service 10.10.0.1:3868 -s lc"],
    "long-options": ["--add-service --tcp-service=10.10.0.1:8080 --scheduler=sed "
                     "--persistent=45 --netmask 255.255.0.0"],
    "sh-flags": ["-A -t 10.10.0.1:443 -s sh -b sh-fallback,sh-port"],
    "mh-flags": ["-A -t 10.10.0.1:444 -s mh -b mh-port"],
    "generic-flags": ["-A -t 10.10.0.1:445 -b flag-1,flag-3"],
    "persistent-default": [f"-A {V4} -p"],
    "persistent-port-zero-netmask": ["-A -t 10.10.0.1:0 -p 600 -M 255.255.255.0"],
    "persistence-engine-sip": ["-A -u 10.10.0.1:5060 -p 60 --pe sip"],
    "fwmark": ["-A -f 1 -s rr"],
    "fwmark-ipv6-persistent-netmask": ["-A -f 2 -6 -p 300 -M 64"],
    "fwmark-max": ["-A -f 4294967295"],
    "ipv6-tcp": [f"-A {V6} -s nq"],
    "ipv6-udp-persistent-netmask": ["-A -u [2001:db8::1]:53 -p 30 -M 96"],
    "names-localhost": ["-A -t localhost:http", "-a -t localhost:http -r 127.0.0.1:80 -m"],
    "dest-dr-default": [f"-A {V4}", f"-a {V4} -r 10.10.1.1"],
    "dest-nat-weight": [f"-A {V4}", f"-a {V4} -r 10.10.1.2:8080 -m -w 3"],
    "dest-ipip": [f"-A {V4}", f"-a {V4} -r 10.10.1.3 -i"],
    "dest-gue-nocsum": [f"-A {V4}",
                        f"-a {V4} -r 10.10.1.4 -i --tun-type gue --tun-port 6080 --tun-nocsum"],
    "dest-gue-csum": [f"-A {V4}",
                      f"-a {V4} -r 10.10.1.4 -i --tun-type gue --tun-port 6081 --tun-csum"],
    "dest-gue-remcsum": [f"-A {V4}", f"-a {V4} -r 10.10.1.4 -i --tun-type gue --tun-port 6082 "
                         "--tun-remcsum"],
    "dest-gre": [f"-A {V4}", f"-a {V4} -r 10.10.1.5 -i --tun-type gre",
                 f"-a {V4} -r 10.10.1.6 -i --tun-type gre --tun-csum"],
    "dest-thresholds": [f"-A {V4}", f"-a {V4} -r 10.10.1.7 -m -x 100 -y 50",
                        f"-a {V4} -r 10.10.1.8 -m --u-threshold 10"],
    "dest-weight-zero-and-big": [f"-A {V4}", f"-a {V4} -r 10.10.1.9 -w 0",
                                 f"-a {V4} -r 10.10.1.10 -w 70000"],
    "ipv6-dests": [f"-A {V6}", f"-a {V6} -r [2001:db8::10]:8080 -m -w 2",
                   f"-a {V6} -r [2001:db8::11]"],
    "mixed-family-tunnel": [f"-A {V4}", f"-a {V4} -r [2001:db8::20] -i"],
    "fwmark-dests": ["-A -f 1", "-a -f 1 -r 10.10.1.5:0 -g", "-a -f 1 -r 10.10.1.6:8080 -m"],
    "edit-service": [f"-A {V4} -s rr -p 100", f"-E {V4} -s wlc"],
    "edit-service-long": [f"-A {V4}", f"--edit-service {V4} -p 20 -s sh -b sh-port"],
    "edit-server": [f"-A {V4}", f"-a {V4} -r 10.10.1.2 -m", f"-e {V4} -r 10.10.1.2 -m -w 5 -x 9"],
    "delete-server": [f"-A {V4}", f"-a {V4} -r 10.10.1.2 -m", f"-a {V4} -r 10.10.1.3 -m",
                      f"-d {V4} -r 10.10.1.2"],
    "delete-service": [f"-A {V4}", "-A -u 10.10.0.1:53", f"-D {V4}"],
    "clear": [f"-A {V4}", "-A -f 3", "-C"],
    "zero-all-and-one": [f"-A {V4}", "-Z", f"-Z {V4}"],
    "timeouts-set": ["--set 1000 100 200"],
    "timeouts-keep": ["--set 10 0 0", "--set 0 20 0"],
    "daemon-master": [f"--start-daemon master --mcast-interface {SYNC_IF}"],
    "daemon-backup-options": [f"--start-daemon backup --mcast-interface {SYNC_IF} --syncid 5 "
                              "--mcast-group 224.0.0.82 --mcast-port 8849 --mcast-ttl 2 "
                              "--sync-maxlen 1400"],
    "daemon-ipv6-group": [f"--start-daemon master --mcast-interface {SYNC_IF} "
                          "--mcast-group ff02::5"],
    "daemon-stop": [f"--start-daemon master --mcast-interface {SYNC_IF} --syncid 9",
                    f"--start-daemon backup --mcast-interface {SYNC_IF}",
                    "--stop-daemon master"],
    "daemon-errors": ["--start-daemon master", "--stop-daemon backup",
                      f"--start-daemon master --mcast-interface {SYNC_IF}",
                      f"--start-daemon master --mcast-interface {SYNC_IF}"],
    "kernel-errors": [f"-A {V4}", f"-A {V4}", "-E -t 10.10.0.9:80", "-D -t 10.10.0.9:80",
                      "-Z -t 10.10.0.9:80", "-a -t 10.10.0.9:80 -r 10.10.1.1",
                      f"-a {V4} -r 10.10.1.1", f"-a {V4} -r 10.10.1.1",
                      f"-e {V4} -r 10.10.1.99", f"-d {V4} -r 10.10.1.99",
                      "-A -t 10.10.0.2:80 -s bogus", "-A -t 10.10.0.3:80 -p --pe nope",
                      f"-a {V4} -r 10.10.1.2 -x 5 -y 10", f"-a {V4} -r 255.255.255.255",
                      "-L -t 10.10.0.9:80", "-L -n -t 10.10.0.9:80"],
    "sort-order": ["-A -t 200.0.0.1:80", "-A -t 10.0.0.1:80", "-A -t 100.0.0.1:80",
                   "-A -u 10.0.0.1:80", "-A -t 10.0.0.1:79", "-A -f 7", "-A -f 3",
                   "-A -f 3 -6", "-A -t [2001:db8::2]:80", "-A -t [2001:db8::1]:81",
                   "-A --sctp-service 10.0.0.1:80",
                   "-a -t 10.0.0.1:80 -r 200.0.0.2:80 -m", "-a -t 10.0.0.1:80 -r 10.0.0.2:80 -m",
                   "-a -t 10.0.0.1:80 -r 100.0.0.2:80 -m", "-a -t 10.0.0.1:80 -r 10.0.0.2:79 -m"],
    "list-one-service": [f"-A {V4}", f"-a {V4} -r 10.10.1.2 -m", "-A -f 5",
                         f"-L -n {V4}", f"-L {V4} --stats --exact", "-L -f 5 --tun-info",
                         f"-l -n {V4} --thresholds", f"-Ln {V4} --persistent-conn --nosort"],
    "restore": [("-R", "-A -t 10.10.0.1:80 -s rr\n\nipvsadm -a -t 10.10.0.1:80 -r 10.10.1.1 "
                 "-m -w 2\n-a\t-t 10.10.0.1:80 -r 10.10.1.2 -i --tun-type gue --tun-port 99 "
                 "--tun-csum\r\n-A -f 9 -6\n")],
    "restore-kernel-error-continues": [("-R", "-A -t 10.10.0.1:80\n-A -t 10.10.0.1:80\n"
                                        "-A -t 10.10.0.2:80\n")],
    "restore-last-line-fails": [("-R", "-A -t 10.10.0.1:80\n-D -t 10.10.0.7:80\n")],
    "restore-comment-aborts": [("-R", "-A -t 10.10.0.1:80\n# a comment\n-A -t 10.10.0.2:80\n")],
    "restore-invalid-aborts": [("-R", "-A -t 10.10.0.1:80\n-A -t 10.10.0.2\n"
                                "-A -t 10.10.0.3:80\n")],
    "restore-popt-error-continues": [("-R", "-A -t 10.10.0.1:80 --bogus\n-A -t 10.10.0.3:80\n")],
    "restore-nested-restore": [("-R", "-A -t 10.10.0.1:80\n-R\n-A -t 10.10.0.3:80\n")],
    "listing-variants": [f"-A {V4} -p", f"-a {V4} -r 10.10.1.2 -m -w 2", "-A -f 8 -6",
                         "", "-l -n", "--list --numeric --sort", "-L --stats", "-L --rate",
                         "-Ln --rate -X", "--save --numeric", "-L -c --persistent-conn",
                         "-L --tun-info", "-L --thresholds", "-L --persistent-conn"],
    "save-restore-round-trip": [f"-A {V4} -s sh -b sh-fallback -p 50 -M 255.255.0.0",
                                f"-a {V4} -r 10.10.1.2 -m -w 4",
                                f"-a {V4} -r 10.10.1.3 -i --tun-type gre --tun-csum",
                                "-A -f 6 -6 -p 10 -M 120 -s mh -b mh-fallback",
                                "-A -u 10.10.0.1:53 -o -s dh"],
}

# Listings compared after every case: each tool lists the table ipvsadm made and the one
# pyipvsadm made (ipvsadm re-lists the latter in the CORE formats only: each of its runs costs
# ~0.15 s under emulation, and these show every setting the kernel keeps).
LISTINGS = [
    "-L", "-Ln", "-Ln --stats", "-Ln --rate", "-Ln --stats --exact", "-Ln --thresholds",
    "-Ln --persistent-conn", "-Ln --tun-info", "-Ln --nosort", "-S", "-S -n", "-L --timeout",
    "-L --daemon", "-Lnc",
]
CORE_LISTINGS = ["-Ln --thresholds", "-S -n", "-L --timeout", "-L --daemon"]

# Command lines refused before any kernel change: same stdout, stderr and exit status.
INVALID = [
    "-A -t 10.0.0.1", "-A -t 10.0.0.1:53 -o", "-A -f 0", "-A -f -1", "-A -f 4294967296",
    "-A -6 -f 5", "-A -f 5 -6 -M 129", "-A -t [2001:db8::1]:80 -p -M abc",
    "-A -t [2001:db8::1] -p", "-A -t [1.2.3.4]:80", "-A -t 1234", "-A -t ''",
    "-A -t 10.0.0.1:nosuchservice", "-A -t 10.0.0.1:65536", "-A -t nosuch.invalid:80",
    "-A -t 10.0.0.1:80 -b sh-fallback", "-A -t 10.0.0.1:80 -s mh -b sh-port",
    "-A -t 10.0.0.1:80 -b bogus", "-A -t 10.0.0.1:80 -s rr -s wlc",
    "-A -t 10.0.0.1:80 -f 3", "-A -t 10.0.0.1:80 -r 10.0.0.2", "-A -t 10.0.0.1:80 -n",
    "-A -t 10.0.0.1:80 -p 0", "-A -t 10.0.0.1:80 -p 2678401", "-A -t 10.0.0.1:80 -p abc",
    "-A -t 10.0.0.1:80 -M bogus.invalid", "-A -t 10.0.0.1:80 foo", "-A -t 10.0.0.1:80 -L",
    "-A -t 10.0.0.1:80 -h", "-E", "-D -t 10.0.0.1:80 -s rr", "-C -n", "-C x",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -w -1", "-a -t 10.0.0.1:80 -r 10.0.0.2 -w 2147483648",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -x -1", "-a -t 10.0.0.1:80 -r 10.0.0.2 -y abc",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-remcsum",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-port 5",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type ipip --tun-csum",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type vxlan",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -m --tun-type gre", "-a -t 10.0.0.1:80 -r 10.0.0.2 --tun-csum",
    "-a -t 10.0.0.1:80 -r 10.0.0.2 -m -g", "-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m",
    "-a -t 10.0.0.1:80 -r bogus.invalid", "-a -t 10.0.0.1:80", "-a -r 10.0.0.2",
    "-d -t 10.0.0.1:80 -r 10.0.0.2 -w 0", "-L -c --stats", "-L --timeout --daemon",
    "-L --timeout --persistent-conn", "-L --daemon --rate", "-L -t 10.0.0.1:80 -c",
    "-L -s rr", "--list=5", "-L -n=3", "-L=", "-L --numeric=yes", "-S --stats", "-Z -n",
    "--set 1 2", "--set 1 2 3 4", "--set 1 2 x", "--set -1 2 3", "--start-daemon foo",
    "--start-daemon", "--start-daemon master --syncid 256",
    "--start-daemon master --mcast-group 10.0.0.1", "--start-daemon master --mcast-group fe80::5",
    "--start-daemon master --mcast-port 0", "--start-daemon master --mcast-ttl 256",
    "--start-daemon master --sync-maxlen 65508",
    "--stop-daemon master --mcast-interface eth0", "--stop-daemon x", "-R x", "-V", "--bogus",
    "-L --bogus", "-A -t 10.0.0.1:80 --bogus", "-A -t", "-A -t 10.0.0.1:80 -s", "foo",
    "-- -L", "-L -- foo", "-", "-L -", "-L -Q", "-LQ", "-LA",
    "-A -t 10.0.0.1:80 --start-daemon master", "-6", "-t 10.0.0.1:80 -A",
    "--sctp-service 10.0.0.1:80 -A", "-A -t 10.0.0.1:80 -M 255.255.255.0 -M 255.0.0.0",
    "-h", "--help", "-v", "--version",
]
