/* Printing a decision, shared by the host demo and the Cortex-M driver (both use stdio):
   "class logit logit ..."; a window's adds "atrial TEMPL SPREAD BEATS ORGANISED", or
   "atrial -" when no atrial check runs. */
#ifndef AFD_PRINT_H
#define AFD_PRINT_H

#include <stdio.h>
#include "afdetect.h"

static void print_decision(int cls, const int32_t logits[AFD_N_CLASSES])
{
    int i;
    printf("%s", afd_class_names[cls]);
    for (i = 0; i < AFD_N_CLASSES; i++) printf(" %ld", (long)logits[i]);
}

static void print_window(int cls, const int32_t logits[AFD_N_CLASSES],
                         const afd_atrial_t *atrial, void *user)
{
    (void)user;
    print_decision(cls, logits);
    if (atrial)
        printf(" atrial %lld %lld %ld %d\n", (long long)atrial->templ,
               (long long)atrial->spread, (long)atrial->beats, (int)atrial->organised);
    else
        printf(" atrial -\n");
}

#endif
