/*
 * Which macOS release the simulator plays: ARCBOX_VZ_SIM_MACOS=<major.minor>, read
 * once; by default the newest release in the API table (sim_versions.m hides what
 * that release lacks).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "sim.h"

#define SIM_NEWEST_MACOS 2600 /* macOS 26.0 */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int version;

static void read_version(void)
{
    const char *text = getenv("ARCBOX_VZ_SIM_MACOS");
    version = SIM_NEWEST_MACOS;
    if (text == NULL || *text == '\0') return;
    unsigned major = 0, minor = 0;
    char rest = 0;
    int n = sscanf(text, "%u.%u%c", &major, &minor, &rest);
    if (n < 1 || n > 2 || major < 11 || major > 99 || minor > 99)
        sim_fatal("ARCBOX_VZ_SIM_MACOS=%s: expected a macOS release from 11.0 on, such as 13.0", text);
    version = (int)(major * 100 + minor);
}

int sim_macos(void)
{
    pthread_once(&once, read_version);
    return version;
}

int sim_macos_at_least(int major, int minor) { return sim_macos() >= major * 100 + minor; }
