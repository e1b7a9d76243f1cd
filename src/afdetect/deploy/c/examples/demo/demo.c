/* Demo: classify one recording given as integers separated by white space (one per line).
     afd_demo input.txt            quantised samples (afd_strip_push's input)
     afd_demo --adc GAIN raw.txt   raw 16-bit ADC counts at AFD_SAMPLING_RATE_HZ, GAIN
                                   counts/mV (1 to 65535)
     afd_demo --batch input.txt    as the first, with the batch mode (afd_classify_batch)
   Prints the class and the integer logits. The strip is read whole, into a buffer that
   grows as it reads, up to AFD_MAX_SAMPLES samples: the longest strip whose int32
   accumulators are proven (use --stream for longer recordings).
     afd_demo --stream FS WINDOW HOP raw.txt
   Continuous monitoring of raw ADC counts at FS Hz (AFD_MIN_FS_IN_HZ to AFD_MAX_FS_IN_HZ),
   read as they come (any length; FILE "-" reads standard input): one line per window
   decision, "class logits... atrial TEMPL SPREAD BEATS ORGANISED" (the atrial check's
   terms, afdetect.h; "atrial -" when it does not run).
   A file that is longer, holds anything but integers in range, or cannot be read, and a
   bad argument, are refused with one line on stderr: exit status 1 (2 for usage). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "afdetect.h"
#include "../afd_print.h"

/* The next integer of fh into *v: 1; 0 at the end of the file; -1, after a message naming
   path and the sample's position, for a read error or a token that is not an integer in
   lo..hi. */
static int next_value(FILE *fh, const char *path, long index, long lo, long hi, long *v)
{
    char token[32], *end;
    if (fscanf(fh, "%31s", token) != 1) {
        if (!ferror(fh)) return 0;
        fprintf(stderr, "%s: read error after %ld samples\n", path, index);
        return -1;
    }
    errno = 0;
    *v = strtol(token, &end, 10);
    if (end == token || *end != '\0' || errno == ERANGE || *v < lo || *v > hi) {
        fprintf(stderr, "%s: sample %ld is \"%s\", not an integer in %ld..%ld\n", path,
                index + 1, token, lo, hi);
        return -1;
    }
    return 1;
}

/* A whole argument as an integer in lo..hi into *v: 1, or 0 when it is not one. */
static int parse_arg(const char *text, long lo, long hi, long *v)
{
    char *end;
    errno = 0;
    *v = strtol(text, &end, 10);
    return end != text && *end == '\0' && errno != ERANGE && *v >= lo && *v <= hi;
}

/* The whole file as samples in lo..hi, in a buffer grown as needed up to AFD_MAX_SAMPLES:
   their number (the buffer in *out, for the caller to free), or -1 after a message. */
static long read_strip(const char *path, long lo, long hi, int16_t **out)
{
    FILE *fh = fopen(path, "r");
    int16_t *buf = NULL, *grown;
    long n = 0, capacity = 0, v;
    int got;
    if (!fh) {
        fprintf(stderr, "%s: cannot open (%s)\n", path, strerror(errno));
        return -1;
    }
    while ((got = next_value(fh, path, n, lo, hi, &v)) == 1) {
        if (n == AFD_MAX_SAMPLES) {
            fprintf(stderr, "%s: more than %ld samples (%ld s at %d Hz), the longest strip "
                    "this engine is proven for; use --stream for long recordings\n", path,
                    (long)AFD_MAX_SAMPLES, (long)AFD_MAX_SAMPLES / AFD_SAMPLING_RATE_HZ,
                    AFD_SAMPLING_RATE_HZ);
            got = -1;
            break;
        }
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 4096;
            if (capacity > AFD_MAX_SAMPLES) capacity = AFD_MAX_SAMPLES;
            grown = (int16_t *)realloc(buf, sizeof *buf * (size_t)capacity);
            if (!grown) {
                fprintf(stderr, "%s: out of memory at %ld samples\n", path, n);
                got = -1;
                break;
            }
            buf = grown;
        }
        buf[n++] = (int16_t)v;
    }
    fclose(fh);
    if (got < 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    return n;
}

/* The instances: static, as they are large for a stack */
static afd_strip_t strip;
static afd_stream_t monitor;

static int stream(int argc, char **argv)
{
    long fs, window, hop, v, n = 0;
    int got;
    FILE *fh;
    if (argc != 6 || !parse_arg(argv[2], AFD_MIN_FS_IN_HZ, AFD_MAX_FS_IN_HZ, &fs) ||
        !parse_arg(argv[3], 1, AFD_MAX_WINDOW_STEPS, &window) ||
        !parse_arg(argv[4], 1, INT32_MAX, &hop)) {
        fprintf(stderr, "usage: %s --stream FS WINDOW_STEPS HOP_STEPS FILE (FS %ld to %ld "
                "Hz, WINDOW_STEPS 1 to %d, HOP_STEPS >= 1)\n", argv[0],
                (long)AFD_MIN_FS_IN_HZ, (long)AFD_MAX_FS_IN_HZ, AFD_MAX_WINDOW_STEPS);
        return 2;
    }
    if (afd_stream_init(&monitor, (int32_t)fs, (int32_t)window, (int32_t)hop, print_window,
                        NULL)) {
        fprintf(stderr, "%s: afd_stream_init refused the rate or window\n", argv[0]);
        return 1;
    }
    fh = strcmp(argv[5], "-") == 0 ? stdin : fopen(argv[5], "r");
    if (!fh) {
        fprintf(stderr, "%s: cannot open (%s)\n", argv[5], strerror(errno));
        return 1;
    }
    /* afd_stream_push clamps to 16 bits; anything int32 holds is a count */
    while ((got = next_value(fh, argv[5], n, INT32_MIN, INT32_MAX, &v)) == 1) {
        afd_stream_push(&monitor, (int32_t)v);
        n++;
    }
    if (fh != stdin) fclose(fh);
    return got < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[argc - 1] : NULL;
    int adc = argc == 4 && strcmp(argv[1], "--adc") == 0;
    int batch = argc == 3 && strcmp(argv[1], "--batch") == 0;
    const long top = (1L << (AFD_INPUT_BITS - 1)) - 1;
    int16_t *raw = NULL, *samples;
    int32_t logits[AFD_N_CLASSES];
    long n, gain = 0;
    int cls;
    if (argc > 1 && strcmp(argv[1], "--stream") == 0) return stream(argc, argv);
    if (!path || (argc != 2 && !adc && !batch) || (adc && !parse_arg(argv[2], 1, 65535, &gain))) {
        fprintf(stderr, "usage: %s [--adc GAIN (1 to 65535 counts/mV) | --batch] FILE\n",
                argv[0]);
        return 2;
    }
    /* raw counts are 16-bit; quantised samples AFD_INPUT_BITS-bit */
    n = adc ? read_strip(path, -32768, 32767, &raw) : read_strip(path, -top - 1, top, &raw);
    if (n < 0) return 1;
    if (n < AFD_MIN_SAMPLES) {
        fprintf(stderr, "%s: too short (%ld samples, at least %ld)\n", path, n,
                (long)AFD_MIN_SAMPLES);
        free(raw);
        return 1;
    }
    samples = raw;
    if (adc) {
        samples = (int16_t *)malloc(sizeof *samples * (size_t)n);
        if (!samples || afd_quantise_input(raw, (int32_t)n, (int32_t)gain, samples) != 0) {
            fprintf(stderr, "%s: %s\n", path, samples ? "afd_quantise_input refused it"
                                                       : "out of memory");
            free(samples);
            free(raw);
            return 1;
        }
        free(raw);
    }
    if (batch) {
#if AFD_HAS_BATCH
        void *work = malloc(afd_batch_work_bytes((int32_t)n));
        if (!work) {
            fprintf(stderr, "%s: out of memory for the batch mode\n", path);
            free(samples);
            return 1;
        }
        cls = afd_classify_batch(samples, (int32_t)n, logits, work);
        free(work);
#else
        fprintf(stderr, "the %s layout has no batch mode\n", AFD_LAYOUT);
        free(samples);
        return 2;
#endif
    } else {
        cls = afd_classify(&strip, samples, (int32_t)n, logits);
    }
    free(samples);
    if (cls < 0) {
        fprintf(stderr, "%s: the engine refused %ld samples\n", path, n);
        return 1;
    }
    print_decision(cls, logits);
    printf("\n");
    return 0;
}
