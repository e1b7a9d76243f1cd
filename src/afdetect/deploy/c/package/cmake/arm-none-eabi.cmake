# CMake toolchain file for Cortex-M cores with the GNU Arm Embedded toolchain
# (arm-none-eabi-gcc on PATH). Choose the core with -DAFDETECT_CPU=cortex-m0plus, ...
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
# no C library start-up to link a test program against: probe with a static library
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(AFDETECT_CPU "cortex-m4" CACHE STRING "the core, as arm-none-eabi-gcc's -mcpu")
set(CMAKE_C_FLAGS_INIT "-mcpu=${AFDETECT_CPU} -mthumb -ffunction-sections -fdata-sections")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
