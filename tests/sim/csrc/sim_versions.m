/*
 * The macOS release the simulator plays (ARCBOX_VZ_SIM_MACOS, sim_macos.c): every VZ
 * class and member the API table (tests/sim/vz-api.tsv, compiled into
 * sim_api_table.h by build.rs) says came later is made missing, once, before the first
 * class lookup.
 */
#include <pthread.h>
#include <objc/runtime.h>
#include "sim_objc.h"

struct sim_api_row {
    const char *cls;
    char kind;           /* c class, i instance method, k class method, p property, s setter */
    const char *selector;
    int release;         /* major * 100 + minor */
};
#include "sim_api_table.h"

void sim_hide_class(const char *name);
void sim_hide_member(const char *class_name, const char *selector, int is_class_method);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static long rows_hidden;

/* Hiding runs runtime code that may ask class_respondsToSelector() or objc_getClass(),
 * which call back here: that thread must not wait on its own pthread_once. */
static __thread int applying;

static void apply(void)
{
    applying = 1;
    int release = sim_macos();
    for (size_t i = 0; i < sizeof sim_api_rows / sizeof sim_api_rows[0]; i++) {
        const struct sim_api_row *row = &sim_api_rows[i];
        if (row->release <= release) continue;
        rows_hidden++;
        if (row->kind == 'c')
            sim_hide_class(row->cls);
        else
            sim_hide_member(row->cls, row->selector, row->kind == 'k');
    }
    applying = 0;
}

void sim_versions_apply(void)
{
    if (!applying) pthread_once(&once, apply);
}

/* How many rows of the API table are newer than the release played. */
long sim_versions_hidden_rows(void)
{
    sim_versions_apply();
    return rows_hidden;
}
