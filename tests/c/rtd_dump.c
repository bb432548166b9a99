/* rtd_dump.c -- read one rtdecode frame from a file and print its fields, one per line.
 *
 *   cc -std=c99 -Wall -Wextra -o rtd_dump rtd_dump.c && ./rtd_dump frame.bin
 *
 * Output (one field per line):
 *   topic=<topic>  version=<u16>  kind=<u16>  flags=<u32>  count=<u32>  seq=<u64>
 *   t_source=<%.17g, or nan>  t_publish=<%.17g>
 *   then value[i]=<%.9g> per float (estimate), status=<JSON text> (status), or for an
 *   event: pulse_id, t_pulse, intensity, intensity_unit, n_measures, window_ms=<a>,<b> and
 *   channel[m]=flags:<u32>,<measure 0>,<measure 1>,... per channel
 * Exit status: 0 ok, 1 usage / I/O error, 2 malformed frame.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "rtd_frame.h"

static void print_double(const char *name, double x)
{
    if (isnan(x))
        printf("%s=nan\n", name);
    else
        printf("%s=%.17g\n", name, x);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FRAME_FILE\n", argv[0]);
        return 1;
    }
    FILE *fp = fopen(argv[1], "rb");
    if (fp == NULL) {
        perror(argv[1]);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(fp);
    if (buf == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    rtd_frame_t f;
    int rc = rtd_parse(buf, len, &f);
    if (rc != RTD_OK) {
        fprintf(stderr, "malformed frame (error %d)\n", rc);
        free(buf);
        return 2;
    }
    printf("topic=%.*s\n", (int)f.topic_len, f.topic);
    printf("version=%u\n", (unsigned)f.header.version);
    printf("kind=%u\n", (unsigned)f.header.kind);
    printf("flags=%" PRIu32 "\n", f.header.flags);
    printf("count=%" PRIu32 "\n", f.header.count);
    printf("seq=%" PRIu64 "\n", f.header.seq);
    print_double("t_source", f.header.t_source);
    print_double("t_publish", f.header.t_publish);
    if (f.header.kind == RTD_KIND_ESTIMATE) {
        for (uint32_t i = 0; i < f.header.count; ++i)
            printf("value[%" PRIu32 "]=%.9g\n", i, (double)rtd_value(&f, i));
    } else if (f.header.kind == RTD_KIND_EVENT) {
        rtd_event_t ev = rtd_event(&f);
        printf("pulse_id=%" PRIu64 "\n", ev.pulse_id);
        print_double("t_pulse", ev.t_pulse);
        printf("intensity=%.9g\n", (double)ev.intensity);
        printf("intensity_unit=%u\n", (unsigned)ev.intensity_unit);
        printf("n_measures=%u\n", (unsigned)ev.n_measures);
        printf("window_ms=%.9g,%.9g\n", (double)ev.window_start_ms, (double)ev.window_end_ms);
        for (uint32_t m = 0; m < f.header.count; ++m) {
            printf("channel[%" PRIu32 "]=flags:%" PRIu32, m, rtd_event_channel_flags(&f, m));
            for (uint32_t k = 0; k < ev.n_measures; ++k)
                printf(",%.9g", (double)rtd_event_value(&f, m, k));
            printf("\n");
        }
    } else {
        printf("status=%.*s\n", (int)f.payload_len, (const char *)f.payload);
    }
    free(buf);
    return 0;
}
