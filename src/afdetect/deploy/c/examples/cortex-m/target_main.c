/* afdetect firmware driver: reads afd_input.txt through semihosting.
     calibrate N      runs a 2-instruction loop N times: prints the SysTick ticks
     strip            then quantised samples: prints "class logits... ticks"
     stream FS W H    then raw counts: prints "class logits... atrial ..." per window
                      (afd_print.h), then
                      "ticks N": the ticks in afd_stream_push, printing excluded
   and "done". ticks: SysTick ticks spent in the engine (QEMU -icount: see README). */
#include <stdio.h>
#include <string.h>
#include "afdetect.h"
#include "../afd_print.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define MAX_STRIP 18300  /* 61 s at 300 Hz */

extern volatile uint32_t afd_systick_wraps;
static int16_t samples[MAX_STRIP];
/* one mode per run: the two instances share their memory */
static union {
    afd_strip_t strip;
    afd_stream_t monitor;
} engine;

static uint32_t ticks(void)
{
    uint32_t w, v;
    do {
        w = afd_systick_wraps;
        v = SYST_CVR;
    } while (w != afd_systick_wraps);
    return (w << 24) + (0xFFFFFFu - v);
}

static uint32_t printing;  /* ticks spent printing decisions, not in the engine */

static void timed_window(int cls, const int32_t logits[AFD_N_CLASSES],
                         const afd_atrial_t *atrial, void *user)
{
    uint32_t t0 = ticks();
    print_window(cls, logits, atrial, user);
    printing += ticks() - t0;
}

/* The continuous mode on the raw counts that follow in fh, read in chunks so that
   the reading is not timed: prints the windows, then the engine's ticks. */
static int monitor(FILE *fh, long fs, long window, long hop)
{
    static int32_t chunk[1024];
    uint32_t spent = 0, t0;
    int32_t i, got;
    long v;
    if (afd_stream_init(&engine.monitor, (int32_t)fs, (int32_t)window, (int32_t)hop,
                        timed_window, 0))
        return 5;
    do {
        for (got = 0; got < 1024 && fscanf(fh, "%ld", &v) == 1; got++) chunk[got] = (int32_t)v;
        t0 = ticks();
        for (i = 0; i < got; i++) afd_stream_push(&engine.monitor, chunk[i]);
        spent += ticks() - t0;
    } while (got == 1024);
    printf("ticks %lu\n", (unsigned long)(spent - printing));
    return 0;
}

int main(void)
{
    FILE *fh = fopen("afd_input.txt", "r");
    char mode[16];
    long v, fs, window, hop;
    int32_t n = 0, logits[AFD_N_CLASSES];
    uint32_t t0, t1;
    int cls;
    if (!fh || fscanf(fh, "%15s", mode) != 1) return 2;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 7;  /* processor clock, interrupt on wrap, enabled */
    if (strcmp(mode, "calibrate") == 0) {  /* 2 instructions per iteration */
        uint32_t count;
        if (fscanf(fh, "%ld", &v) != 1 || v < 1) return 6;
        count = (uint32_t)v;
        t0 = ticks();
        __asm volatile(".syntax unified\n1: subs %0, %0, #1\n\tbne 1b" : "+l"(count) : : "cc");
        t1 = ticks();
        printf("%lu\n", (unsigned long)(t1 - t0));
    } else if (strcmp(mode, "strip") == 0) {
        while (n < MAX_STRIP && fscanf(fh, "%ld", &v) == 1) samples[n++] = (int16_t)v;
        t0 = ticks();
        cls = afd_classify(&engine.strip, samples, n, logits);
        t1 = ticks();
        if (cls < 0) return 4;
        print_decision(cls, logits);
        printf(" %lu\n", (unsigned long)(t1 - t0));
    } else {
        if (fscanf(fh, "%ld %ld %ld", &fs, &window, &hop) != 3) return 5;
        cls = monitor(fh, fs, window, hop);
        if (cls) return cls;
    }
    fclose(fh);
    printf("done\n");
    return 0;
}
