// SPDX-License-Identifier: GPL-2.0
/*
 * udp_flood: sends COUNT datagrams of SIZE bytes to ADDR:PORT from one unconnected UDP
 * socket as fast as one thread can (one sendto() per datagram, as OpenVPN does), and prints
 * the rate in datagrams per second. Used to measure the cost of the MPUDP send hook.
 *
 * Usage: udp_flood ADDR PORT COUNT SIZE
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	static char payload[65507];
	struct timespec t0, t1;
	long count, size, i, failed = 0;
	double secs;
	int fd;

	if (argc != 5 || inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: udp_flood ADDR PORT COUNT SIZE\n");
		return 2;
	}
	dst.sin_port = htons(atoi(argv[2]));
	count = atol(argv[3]);
	size = atol(argv[4]);
	if (count <= 0 || size < 0 || size > (long)sizeof(payload)) {
		fprintf(stderr, "udp_flood: bad COUNT or SIZE\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++)
		if (sendto(fd, payload, size, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
			failed++;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%.0f %ld\n", count / secs, failed);
	close(fd);
	return 0;
}
