/*
 * What receiving datagrams costs the kernel and a program that does nothing
 * else with them: the floor under kickswarm's multicast receive
 * (docs/BENCHMARKS.md, "Multicast: what a datagram costs").
 *
 *   cc -O2 -o /tmp/udp-recv-floor bench/udp-recv-floor.c
 *   /tmp/udp-recv-floor [recv|recvmmsg] [MiB] [datagram bytes]    # defaults: recv 1024 1400
 *
 * A forked sender sends MiB of datagrams of the given size to 127.0.0.1 in
 * bursts of 32, yielding the CPU after each burst; the receiver reads them
 * with one recv() per datagram, or recvmmsg() of up to 64, and touches
 * nothing. It prints the receiver's CPU (user and system) per datagram and
 * per GiB received, and how many datagrams it read (the socket drops what
 * does not fit its 4 MiB buffer; only datagrams read are counted).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BATCH 64
#define END_BYTES 7

static double seconds(struct timeval t) { return t.tv_sec + t.tv_usec / 1e6; }

static void sender(int port, long total, int size) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char *buf = calloc(1, size);
  for (long sent = 0; sent < total;) {
    for (int i = 0; i < 32 && sent < total; i++, sent += size) sendto(s, buf, size, 0, (struct sockaddr *)&to, sizeof to);
    sched_yield();
  }
  usleep(100000);
  for (int i = 0; i < 20; i++) sendto(s, buf, END_BYTES, 0, (struct sockaddr *)&to, sizeof to);
  _exit(0);
}

int main(int argc, char **argv) {
  int batched = argc > 1 && strcmp(argv[1], "recvmmsg") == 0;
  long total = (argc > 2 ? atol(argv[2]) : 1024) << 20;
  int size = argc > 3 ? atoi(argv[3]) : 1400;
  if (size <= END_BYTES || size > 65000 || total <= 0) {
    fprintf(stderr, "usage: %s [recv|recvmmsg] [MiB] [datagram bytes, %d-65000]\n", argv[0], END_BYTES + 1);
    return 2;
  }
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  int rcvbuf = 4 << 20;
  setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof me;
  if (bind(s, (struct sockaddr *)&me, sizeof me) != 0 || getsockname(s, (struct sockaddr *)&me, &len) != 0) return perror("bind"), 1;
  pid_t child = fork();
  if (child == 0) sender(ntohs(me.sin_port), total, size);

  static char bufs[BATCH][65536];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = sizeof bufs[i]};
    msgs[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
  }
  long n = 0, bytes = 0, calls = 0;
  struct rusage r0, r1;
  int started = 0, ended = 0;
  while (!ended) {
    int k;
    if (batched) {
      k = recvmmsg(s, msgs, BATCH, MSG_WAITFORONE, NULL);
    } else {
      msgs[0].msg_len = recv(s, bufs[0], sizeof bufs[0], 0);
      k = (int)msgs[0].msg_len < 0 ? -1 : 1;
    }
    if (k < 0) return perror("receive"), 1;
    calls++;
    for (int i = 0; i < k && !ended; i++) {
      if (msgs[i].msg_len == END_BYTES) ended = 1;
      else {
        if (!started) getrusage(RUSAGE_SELF, &r0), started = 1;
        n++;
        bytes += msgs[i].msg_len;
      }
    }
  }
  getrusage(RUSAGE_SELF, &r1);
  waitpid(child, NULL, 0);
  if (n == 0) return fprintf(stderr, "no datagram read\n"), 1;
  double user = seconds(r1.ru_utime) - seconds(r0.ru_utime), sys = seconds(r1.ru_stime) - seconds(r0.ru_stime);
  printf("{\"way\":\"%s\",\"datagramBytes\":%d,\"datagrams\":%ld,\"calls\":%ld,\"mibRead\":%.1f,\"usPerDatagram\":%.2f,\"systemUsPerDatagram\":%.2f,\"cpuSecondsPerGiB\":%.2f}\n",
         batched ? "recvmmsg" : "recv", size, n, calls, bytes / 1048576.0, (user + sys) * 1e6 / n, sys * 1e6 / n, (user + sys) / (bytes / 1073741824.0));
  return 0;
}
