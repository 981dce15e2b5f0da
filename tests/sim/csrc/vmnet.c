/*
 * Fake vmnet network API (macOS 26): vmnet_network_configuration_*,
 * vmnet_network_create, vmnet_network_get_ipv4_subnet, and CFRelease for their
 * objects, reached through sim_vmnet_dlopen/sim_vmnet_dlsym, the simulator's
 * stand-ins for dlopen/dlsym (the crate resolves vmnet at run time).
 *
 * Behaviour follows Apple's vmnet documentation and vz-api.tsv (rows "vmnet"):
 * - dlopen of /System/Library/Frameworks/vmnet.framework/vmnet succeeds on every
 *   release (the framework exists since 10.10); dlsym finds the vmnet_network_*
 *   functions only from 26.0 on, CFRelease always;
 * - vmnet_network_configuration_create accepts VMNET_HOST_MODE and
 *   VMNET_SHARED_MODE only (bridged is refused: VMNET_INVALID_ARGUMENT);
 * - set_ipv4_subnet refuses a non-contiguous mask; it accepts the .0 address (which
 *   only fails later, at VM start, on a Mac);
 * - add_port_forwarding_rule accepts IPPROTO_TCP/UDP and AF_INET/AF_INET6 only;
 * - set_external_interface is for shared mode only;
 * - vmnet_network_create reserves the subnet while the network lives: a second live
 *   network on an overlapping subnet gets VMNET_SHARING_SERVICE_BUSY;
 * - objects are +1 and released with CFRelease, which crashes on NULL;
 * - vmnet_network_copy_serialization returns a +1 XPC object (xpc_release);
 *   vmnet_network_create_with_serialization makes another handle on the same
 *   logical network, which therefore does not conflict with its own subnet;
 * - varies (sim_choose): the default /24 under 192.168/16, and whether
 *   vmnet_network_get_ipv4_subnet reports the address as given or masked.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sim.h"

enum {
    VMNET_SUCCESS = 1000,
    VMNET_FAILURE = 1001,
    VMNET_INVALID_ARGUMENT = 1003,
    VMNET_SHARING_SERVICE_BUSY = 1009,
    VMNET_HOST_MODE = 1000,
    VMNET_SHARED_MODE = 1001,
};

#define MAGIC_CONFIG 0x766d6e63u  /* "vmnc" */
#define MAGIC_NETWORK 0x766d6e6eu /* "vmnn" */
#define MAGIC_XPC 0x766d6e78u     /* "vmnx" */
#define MAX_ENTRIES 64

struct sim_in_addr { uint32_t s_addr; }; /* network byte order */

struct vmnet_settings {
    uint32_t mode;
    uint32_t subnet, mask; /* network byte order */
    uint32_t mtu;
    char ifname[32];
    int dhcp, dns_proxy, nat44, nat66, router_advertisement;
    unsigned char reservation_macs[MAX_ENTRIES][6];
    uint32_t reservation_addrs[MAX_ENTRIES];
    int reservations;
    int rules;
};

struct vmnet_object {
    uint32_t magic;
    int refs;
    struct vmnet_settings s;
    struct vmnet_object *next_network; /* live networks, for subnet conflicts */
    uint64_t id;                       /* the logical network (shared by its copies) */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vmnet_object *live_networks;
static long live_objects;
static uint64_t next_id = 1;

long sim_vmnet_live_objects(void)
{
    return __atomic_load_n(&live_objects, __ATOMIC_SEQ_CST);
}

static struct vmnet_object *new_object(uint32_t magic)
{
    struct vmnet_object *o = calloc(1, sizeof *o);
    if (o == NULL) return NULL;
    o->magic = magic;
    o->refs = 1;
    __atomic_add_fetch(&live_objects, 1, __ATOMIC_SEQ_CST);
    return o;
}

static struct vmnet_object *checked(const void *ref, uint32_t magic, const char *function)
{
    const struct vmnet_object *o = ref;
    if (o == NULL || o->magic != magic || o->refs <= 0) {
        fprintf(stderr, "sim: %s: not a live vmnet %s (%p)\n", function,
                magic == MAGIC_CONFIG ? "configuration" : "network", ref);
        abort();
    }
    return (struct vmnet_object *)o;
}

/* ---- CoreFoundation ---- */

static void sim_CFRelease(const void *cf)
{
    struct vmnet_object *o = (struct vmnet_object *)cf;
    if (o == NULL) {
        fprintf(stderr, "sim: CFRelease(NULL)\n");
        abort();
    }
    checked(o, o->magic == MAGIC_NETWORK ? MAGIC_NETWORK : MAGIC_CONFIG, "CFRelease");
    pthread_mutex_lock(&lock);
    int left = --o->refs;
    if (left == 0 && o->magic == MAGIC_NETWORK) {
        for (struct vmnet_object **p = &live_networks; *p != NULL; p = &(*p)->next_network) {
            if (*p == o) {
                *p = o->next_network;
                break;
            }
        }
    }
    pthread_mutex_unlock(&lock);
    if (left == 0) {
        o->magic = 0;
        __atomic_sub_fetch(&live_objects, 1, __ATOMIC_SEQ_CST);
        free(o);
    }
}

/* CFRetain of a vmnet network, for vz_vmnet.m. */
void sim_vmnet_network_retain(const void *network)
{
    struct vmnet_object *o = checked(network, MAGIC_NETWORK, "CFRetain");
    pthread_mutex_lock(&lock);
    o->refs++;
    pthread_mutex_unlock(&lock);
}

void sim_vmnet_network_release(const void *network)
{
    sim_CFRelease(network);
}

/* Whether `network` is a live vmnet network (for vz_vmnet.m). */
int sim_vmnet_is_network(const void *network)
{
    const struct vmnet_object *o = network;
    return o != NULL && o->magic == MAGIC_NETWORK && o->refs > 0;
}

/* ---- configurations ---- */

static void set_status(uint32_t *status, uint32_t value)
{
    if (status != NULL) *status = value;
}

static void *configuration_create(uint32_t mode, uint32_t *status)
{
    if (mode != VMNET_HOST_MODE && mode != VMNET_SHARED_MODE) {
        set_status(status, VMNET_INVALID_ARGUMENT);
        return NULL;
    }
    struct vmnet_object *o = new_object(MAGIC_CONFIG);
    if (o == NULL) {
        set_status(status, VMNET_FAILURE);
        return NULL;
    }
    o->s.mode = mode;
    /* A random /24 under 192.168/16. */
    unsigned char a[4] = { 192, 168, (unsigned char)(64 + sim_choose(128)), 1 };
    unsigned char m[4] = { 255, 255, 255, 0 };
    memcpy(&o->s.subnet, a, 4);
    memcpy(&o->s.mask, m, 4);
    o->s.mtu = 1500;
    o->s.dhcp = o->s.dns_proxy = o->s.nat44 = o->s.nat66 = o->s.router_advertisement = 1;
    set_status(status, VMNET_SUCCESS);
    return o;
}

static int contiguous(uint32_t mask_be)
{
    uint32_t m = __builtin_bswap32(mask_be);
    return m != 0 && (~m & (~m + 1)) == 0;
}

static uint32_t set_ipv4_subnet(void *config, const struct sim_in_addr *addr,
                                const struct sim_in_addr *mask)
{
    struct vmnet_object *o = checked(config, MAGIC_CONFIG, "set_ipv4_subnet");
    if (addr == NULL || mask == NULL || !contiguous(mask->s_addr)) return VMNET_INVALID_ARGUMENT;
    o->s.subnet = addr->s_addr;
    o->s.mask = mask->s_addr;
    return VMNET_SUCCESS;
}

static uint32_t set_mtu(void *config, uint32_t mtu)
{
    struct vmnet_object *o = checked(config, MAGIC_CONFIG, "set_mtu");
    if (mtu == 0) return VMNET_INVALID_ARGUMENT;
    o->s.mtu = mtu;
    return VMNET_SUCCESS;
}

static uint32_t set_external_interface(void *config, const char *ifname)
{
    struct vmnet_object *o = checked(config, MAGIC_CONFIG, "set_external_interface");
    if (o->s.mode != VMNET_SHARED_MODE || ifname == NULL || ifname[0] == 0 ||
        strlen(ifname) >= sizeof o->s.ifname)
        return VMNET_INVALID_ARGUMENT;
    strcpy(o->s.ifname, ifname);
    return VMNET_SUCCESS;
}

static uint32_t add_dhcp_reservation(void *config, const unsigned char *mac,
                                     const struct sim_in_addr *addr)
{
    struct vmnet_object *o = checked(config, MAGIC_CONFIG, "add_dhcp_reservation");
    if (mac == NULL || addr == NULL || o->s.reservations == MAX_ENTRIES)
        return VMNET_INVALID_ARGUMENT;
    memcpy(o->s.reservation_macs[o->s.reservations], mac, 6);
    o->s.reservation_addrs[o->s.reservations] = addr->s_addr;
    o->s.reservations++;
    return VMNET_SUCCESS;
}

static uint32_t add_port_forwarding_rule(void *config, uint8_t protocol, uint8_t family,
                                         uint16_t internal_port, uint16_t external_port,
                                         const void *internal_address)
{
    struct vmnet_object *o = checked(config, MAGIC_CONFIG, "add_port_forwarding_rule");
    if ((protocol != 6 && protocol != 17) || (family != 2 && family != 30) ||
        internal_address == NULL || o->s.rules == MAX_ENTRIES)
        return VMNET_INVALID_ARGUMENT;
    (void)internal_port;
    (void)external_port;
    o->s.rules++;
    return VMNET_SUCCESS;
}

static void disable_dhcp(void *c) { checked(c, MAGIC_CONFIG, "disable_dhcp")->s.dhcp = 0; }
static void disable_dns_proxy(void *c) { checked(c, MAGIC_CONFIG, "disable_dns_proxy")->s.dns_proxy = 0; }
static void disable_nat44(void *c) { checked(c, MAGIC_CONFIG, "disable_nat44")->s.nat44 = 0; }
static void disable_nat66(void *c) { checked(c, MAGIC_CONFIG, "disable_nat66")->s.nat66 = 0; }
static void disable_router_advertisement(void *c)
{
    checked(c, MAGIC_CONFIG, "disable_router_advertisement")->s.router_advertisement = 0;
}

/* ---- networks ---- */

static int overlaps(const struct vmnet_settings *a, const struct vmnet_settings *b)
{
    uint32_t mask = __builtin_bswap32(a->mask) & __builtin_bswap32(b->mask);
    return (__builtin_bswap32(a->subnet) & mask) == (__builtin_bswap32(b->subnet) & mask);
}

static void *network_create(void *config, uint32_t *status)
{
    struct vmnet_object *c = checked(config, MAGIC_CONFIG, "vmnet_network_create");
    pthread_mutex_lock(&lock);
    for (struct vmnet_object *n = live_networks; n != NULL; n = n->next_network) {
        if (overlaps(&n->s, &c->s) && n->id != c->id) {
            pthread_mutex_unlock(&lock);
            set_status(status, VMNET_SHARING_SERVICE_BUSY);
            return NULL;
        }
    }
    struct vmnet_object *n = new_object(MAGIC_NETWORK);
    if (n == NULL) {
        pthread_mutex_unlock(&lock);
        set_status(status, VMNET_FAILURE);
        return NULL;
    }
    n->s = c->s;
    n->id = c->id != 0 ? c->id : next_id++;
    n->next_network = live_networks;
    live_networks = n;
    pthread_mutex_unlock(&lock);
    set_status(status, VMNET_SUCCESS);
    return n;
}

static void get_ipv4_subnet(void *network, struct sim_in_addr *subnet, struct sim_in_addr *mask)
{
    struct vmnet_object *n = checked(network, MAGIC_NETWORK, "vmnet_network_get_ipv4_subnet");
    /* Apple says "the IPv4 subnet": as given, or masked to the network address. */
    subnet->s_addr = sim_choose(2) ? n->s.subnet : (n->s.subnet & n->s.mask);
    mask->s_addr = n->s.mask;
}

/* Settings of a live network, for tests: mtu, the disabled switches as bits
 * (dhcp 1, dns proxy 2, nat44 4, nat66 8, router advertisement 16), counts. */
void sim_vmnet_network_settings(const void *network, uint32_t *mtu, uint32_t *disabled,
                                int *reservations, int *rules)
{
    const struct vmnet_object *n = checked(network, MAGIC_NETWORK, "sim_vmnet_network_settings");
    *mtu = n->s.mtu;
    *disabled = (uint32_t)(!n->s.dhcp | !n->s.dns_proxy << 1 | !n->s.nat44 << 2 |
                           !n->s.nat66 << 3 | !n->s.router_advertisement << 4);
    *reservations = n->s.reservations;
    *rules = n->s.rules;
}

/* ---- serialization (XPC objects) ---- */

static void *sim_xpc_retain(void *object)
{
    struct vmnet_object *o = checked(object, MAGIC_XPC, "xpc_retain");
    pthread_mutex_lock(&lock);
    o->refs++;
    pthread_mutex_unlock(&lock);
    return o;
}

static void sim_xpc_release(void *object)
{
    struct vmnet_object *o = checked(object, MAGIC_XPC, "xpc_release");
    pthread_mutex_lock(&lock);
    int left = --o->refs;
    pthread_mutex_unlock(&lock);
    if (left == 0) {
        o->magic = 0;
        __atomic_sub_fetch(&live_objects, 1, __ATOMIC_SEQ_CST);
        free(o);
    }
}

/* The serialization names the logical network and carries its settings. */
static void *copy_serialization(void *network, uint32_t *status)
{
    struct vmnet_object *n = checked(network, MAGIC_NETWORK, "vmnet_network_copy_serialization");
    struct vmnet_object *x = new_object(MAGIC_XPC);
    if (x == NULL) {
        set_status(status, VMNET_FAILURE);
        return NULL;
    }
    x->s = n->s;
    x->id = n->id;
    set_status(status, VMNET_SUCCESS);
    return x;
}

/* Another handle on the same logical network: it does not conflict with itself. */
static void *create_with_serialization(void *serialization, uint32_t *status)
{
    struct vmnet_object *x = checked(serialization, MAGIC_XPC,
                                     "vmnet_network_create_with_serialization");
    struct vmnet_object config = { .magic = MAGIC_CONFIG, .refs = 1, .s = x->s, .id = x->id };
    return network_create(&config, status);
}

/* ---- the loader ---- */

static const char framework[] = "/System/Library/Frameworks/vmnet.framework/vmnet";
static int framework_handle;

void *sim_vmnet_dlopen(const char *path, int mode)
{
    (void)mode;
    return path != NULL && strcmp(path, framework) == 0 ? &framework_handle : NULL;
}

void *sim_vmnet_dlsym(void *handle, const char *symbol)
{
    static const struct {
        const char *name;
        void *function;
        int since;
    } table[] = {
        { "CFRelease", (void *)sim_CFRelease, 1000 },
        { "vmnet_network_configuration_create", (void *)configuration_create, 2600 },
        { "vmnet_network_create", (void *)network_create, 2600 },
        { "vmnet_network_configuration_add_dhcp_reservation", (void *)add_dhcp_reservation, 2600 },
        { "vmnet_network_configuration_add_port_forwarding_rule",
          (void *)add_port_forwarding_rule, 2600 },
        { "vmnet_network_configuration_disable_dhcp", (void *)disable_dhcp, 2600 },
        { "vmnet_network_configuration_disable_dns_proxy", (void *)disable_dns_proxy, 2600 },
        { "vmnet_network_configuration_disable_nat44", (void *)disable_nat44, 2600 },
        { "vmnet_network_configuration_disable_nat66", (void *)disable_nat66, 2600 },
        { "vmnet_network_configuration_disable_router_advertisement",
          (void *)disable_router_advertisement, 2600 },
        { "vmnet_network_configuration_set_external_interface", (void *)set_external_interface,
          2600 },
        { "vmnet_network_configuration_set_ipv4_subnet", (void *)set_ipv4_subnet, 2600 },
        { "vmnet_network_configuration_set_mtu", (void *)set_mtu, 2600 },
        { "vmnet_network_get_ipv4_subnet", (void *)get_ipv4_subnet, 2600 },
        { "vmnet_network_copy_serialization", (void *)copy_serialization, 2600 },
        { "vmnet_network_create_with_serialization", (void *)create_with_serialization, 2600 },
        { "xpc_retain", (void *)sim_xpc_retain, 1007 },
        { "xpc_release", (void *)sim_xpc_release, 1007 },
    };
    if (handle != &framework_handle || symbol == NULL) return NULL;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].name, symbol) == 0)
            return sim_macos() >= table[i].since ? table[i].function : NULL;
    }
    return NULL;
}
