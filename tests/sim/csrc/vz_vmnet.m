/*
 * Fake VZVmnetNetworkDeviceAttachment (macOS 26).
 *
 * Behaviour follows Apple's header (VZVmnetNetworkDeviceAttachment.h, 26.0) and
 * vz-api.tsv:
 * - -initWithNetwork: takes a nonnull vmnet_network_ref: NULL, or anything that is
 *   not a live vmnet network (vmnet.c), raises;
 * - -network returns the pointer given to -initWithNetwork: (+0);
 * - varies (sim_choose): whether the attachment retains the network, which Apple
 *   does not document; a caller must keep its own reference either way.
 */
#include "sim_vz.h"

@implementation VZVmnetNetworkDeviceAttachment
@synthesize network = _network;

- (instancetype)initWithNetwork:(vmnet_network_ref)network
{
    if (!sim_vmnet_is_network(network)) {
        [self release];
        SIM_RAISE(@"*** -[VZVmnetNetworkDeviceAttachment initWithNetwork:]: "
                   "network must be a vmnet_network_ref (got %p)", (void *)network);
    }
    if ((self = [super init]) == nil) return nil;
    _network = network;
    _retainsNetwork = sim_choose(2) != 0;
    if (_retainsNetwork) sim_vmnet_network_retain(network);
    return self;
}

- (void)dealloc
{
    if (_retainsNetwork) sim_vmnet_network_release(_network);
    [super dealloc];
}
@end
