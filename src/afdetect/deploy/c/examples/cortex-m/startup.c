/* Minimal Cortex-M startup for the afdetect firmware: vector table, .data
   copy, .bss clear, semihosting set-up, main(). SysTick counts its wraps for timing. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);
extern void initialise_monitor_handles(void);

volatile uint32_t afd_systick_wraps;

void Reset_Handler(void);
void SysTick_Handler(void);
static void Fault_Handler(void);

__attribute__((section(".isr_vector"), used))
static void (*const vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, 0, 0, 0, 0,
    Fault_Handler, Fault_Handler, 0, Fault_Handler, SysTick_Handler,
};

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst;
    for (dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    initialise_monitor_handles();
    exit(main());
}

void SysTick_Handler(void) { afd_systick_wraps++; }

static void Fault_Handler(void) { exit(3); }
