/*
 * Fake networking classes: VZMACAddress, the NAT, file-handle and bridged
 * attachments, VZBridgedNetworkInterface and VZVirtioNetworkDeviceConfiguration.
 *
 * Behaviour follows Apple's headers and documentation:
 * - -[VZMACAddress initWithString:] accepts exactly six two-digit hexadecimal groups
 *   separated by ':' (either case) and returns nil otherwise;
 * - +randomLocallyAdministeredAddress sets the locally-administered bit and clears
 *   the multicast bit;
 * - a network device's default MAC address is a random locally-administered one, and
 *   its attachment is nil (an invalid configuration);
 * - -[VZFileHandleNetworkDeviceAttachment initWithFileHandle:] raises when the handle
 *   is not a socket ("Failed to get file descriptor properties: ...") or not a
 *   datagram socket ("The fileHandle must be a datagram socket"), as seen in
 *   Code-Hex/vz#96; its MTU defaults to 1500 and is valid in 1500...65535;
 * - a bridged attachment fails validation in a process without the restricted
 *   com.apple.vm.networking entitlement, with Apple's message.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "sim_vz.h"

static int vm_networking_entitled;

void sim_network_set_vm_networking_entitlement(int entitled)
{
    __atomic_store_n(&vm_networking_entitled, entitled != 0, __ATOMIC_SEQ_CST);
}

/* ---- VZMACAddress ---- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    return tolower((unsigned char)c) - 'a' + 10;
}

/* "01:23:45:ab:cd:ef", either case; nothing else. */
static BOOL parse_mac(const char *s, unsigned char out[6])
{
    if (s == NULL || strlen(s) != 17) return NO;
    for (int i = 0; i < 6; i++) {
        const char *group = s + 3 * i;
        if (!isxdigit((unsigned char)group[0]) || !isxdigit((unsigned char)group[1])) return NO;
        if (i < 5 && group[2] != ':') return NO;
        out[i] = (unsigned char)(hex_value(group[0]) << 4 | hex_value(group[1]));
    }
    return YES;
}

@interface VZMACAddress ()
- (instancetype)sim_initWithOctets:(const unsigned char *)octets;
@end

@implementation VZMACAddress
@synthesize string = _string;
@synthesize isBroadcastAddress = _isBroadcastAddress;
@synthesize isMulticastAddress = _isMulticastAddress;
@synthesize isUnicastAddress = _isUnicastAddress;
@synthesize isLocallyAdministeredAddress = _isLocallyAdministeredAddress;
@synthesize isUniversallyAdministeredAddress = _isUniversallyAdministeredAddress;

- (instancetype)sim_initWithOctets:(const unsigned char *)o
{
    if ((self = [super init]) == nil) return nil;
    _string = [[NSString alloc] initWithFormat:@"%02x:%02x:%02x:%02x:%02x:%02x",
                                               o[0], o[1], o[2], o[3], o[4], o[5]];
    BOOL broadcast = YES;
    for (int i = 0; i < 6; i++) broadcast = broadcast && o[i] == 0xff;
    _isBroadcastAddress = broadcast;
    _isMulticastAddress = (o[0] & 0x01) != 0;
    _isUnicastAddress = !_isMulticastAddress;
    _isLocallyAdministeredAddress = (o[0] & 0x02) != 0;
    _isUniversallyAdministeredAddress = !_isLocallyAdministeredAddress;
    return self;
}

- (instancetype)initWithString:(NSString *)string
{
    if (string == nil) {
        [self release];
        SIM_RAISE(@"*** -[VZMACAddress initWithString:]: string must not be nil");
    }
    unsigned char octets[6];
    if (!parse_mac([string UTF8String], octets)) {
        [self release];
        return nil;
    }
    return [self sim_initWithOctets:octets];
}

+ (instancetype)randomLocallyAdministeredAddress
{
    unsigned char octets[6];
    for (int i = 0; i < 6; i++) octets[i] = (unsigned char)random();
    /* Locally administered (bit 1 set), unicast (bit 0 clear). */
    octets[0] = (unsigned char)((octets[0] & 0xfc) | 0x02);
    return [[[self alloc] sim_initWithOctets:octets] autorelease];
}

- (id)copyWithZone:(NSZone *)zone { return [self retain]; }

- (BOOL)isEqual:(id)other
{
    return [other isKindOfClass:[VZMACAddress class]]
           && [_string isEqualToString:[(VZMACAddress *)other string]];
}

- (NSUInteger)hash { return [_string hash]; }

- (void)dealloc
{
    [_string release];
    [super dealloc];
}
@end

/* ---- attachments ---- */

@implementation VZNetworkDeviceAttachment
@end

@implementation VZNATNetworkDeviceAttachment
- (instancetype)init { return [super init]; }
@end

#define NETWORK_MTU_MIN 1500
#define NETWORK_MTU_MAX 65535

@implementation VZFileHandleNetworkDeviceAttachment
@synthesize fileHandle = _fileHandle;
@synthesize maximumTransmissionUnit = _maximumTransmissionUnit;

- (instancetype)initWithFileHandle:(NSFileHandle *)fileHandle
{
    if (fileHandle == nil) {
        [self release];
        SIM_RAISE(@"*** -[VZFileHandleNetworkDeviceAttachment initWithFileHandle:]: "
                   "fileHandle must not be nil");
    }
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt([fileHandle fileDescriptor], SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
        int err = errno;
        [self release];
        SIM_RAISE(@"*** -[VZFileHandleNetworkDeviceAttachment initWithFileHandle:]: "
                   "Failed to get file descriptor properties: %s", strerror(err));
    }
    if (type != SOCK_DGRAM) {
        [self release];
        SIM_RAISE(@"*** -[VZFileHandleNetworkDeviceAttachment initWithFileHandle:]: "
                   "The fileHandle must be a datagram socket");
    }
    if ((self = [super init]) == nil) return nil;
    _fileHandle = [fileHandle retain];
    _maximumTransmissionUnit = NETWORK_MTU_MIN;
    return self;
}

- (NSString *)sim_invalidReason
{
    if (_maximumTransmissionUnit < NETWORK_MTU_MIN || _maximumTransmissionUnit > NETWORK_MTU_MAX)
        return [NSString stringWithFormat:@"The maximum transmission unit %ld of the file handle "
                                           "network attachment is invalid. It must be between "
                                           "%d and %d.",
                                          (long)_maximumTransmissionUnit, NETWORK_MTU_MIN,
                                          NETWORK_MTU_MAX];
    return nil;
}

- (void)dealloc
{
    [_fileHandle release];
    [super dealloc];
}
@end

@interface VZBridgedNetworkInterface ()
- (instancetype)sim_initWithIdentifier:(NSString *)identifier
                  localizedDisplayName:(NSString *)localizedDisplayName;
@end

@implementation VZBridgedNetworkInterface
@synthesize identifier = _identifier;
@synthesize localizedDisplayName = _localizedDisplayName;

- (instancetype)sim_initWithIdentifier:(NSString *)identifier
                  localizedDisplayName:(NSString *)localizedDisplayName
{
    if ((self = [super init]) == nil) return nil;
    _identifier = [identifier copy];
    _localizedDisplayName = [localizedDisplayName copy];
    return self;
}

/* The simulated Mac has a wired and a wireless interface. */
+ (NSArray *)networkInterfaces
{
    VZBridgedNetworkInterface *en0 =
        [[[self alloc] sim_initWithIdentifier:@"en0" localizedDisplayName:@"Ethernet"] autorelease];
    VZBridgedNetworkInterface *en1 =
        [[[self alloc] sim_initWithIdentifier:@"en1" localizedDisplayName:@"Wi-Fi"] autorelease];
    return [NSArray arrayWithObjects:en0, en1, nil];
}

- (void)dealloc
{
    [_identifier release];
    [_localizedDisplayName release];
    [super dealloc];
}
@end

@implementation VZBridgedNetworkDeviceAttachment
@synthesize interface = _interface;

- (instancetype)initWithInterface:(VZBridgedNetworkInterface *)interface
{
    if (interface == nil) {
        [self release];
        SIM_RAISE(@"*** -[VZBridgedNetworkDeviceAttachment initWithInterface:]: "
                   "interface must not be nil");
    }
    if ((self = [super init]) == nil) return nil;
    _interface = [interface retain];
    return self;
}

- (NSString *)sim_invalidReason
{
    if (!__atomic_load_n(&vm_networking_entitled, __ATOMIC_SEQ_CST))
        return [NSString stringWithUTF8String:
                             "Using VZBridgedNetworkDeviceAttachment in a process that lacks "
                             "the \u201ccom.apple.vm.networking\u201d entitlement."];
    return nil;
}

- (void)dealloc
{
    [_interface release];
    [super dealloc];
}
@end

/* ---- devices ---- */

@implementation VZNetworkDeviceConfiguration
@synthesize MACAddress = _MACAddress;
@synthesize attachment = _attachment;

- (void)setMACAddress:(VZMACAddress *)MACAddress
{
    if (MACAddress == nil)
        SIM_RAISE(@"*** -[VZNetworkDeviceConfiguration setMACAddress:]: MACAddress must not be nil");
    VZMACAddress *old = _MACAddress;
    _MACAddress = [MACAddress copy];
    [old release];
}

- (id)copyWithZone:(NSZone *)zone
{
    VZNetworkDeviceConfiguration *copy = [[[self class] allocWithZone:zone] init];
    [copy setMACAddress:_MACAddress];
    [copy setAttachment:_attachment];
    return copy;
}

- (NSString *)sim_invalidReason
{
    if (_attachment == nil) return @"A network device must have an attachment.";
    if ([_attachment respondsToSelector:@selector(sim_invalidReason)])
        return [(id<SimValidating>)_attachment sim_invalidReason];
    return nil;
}

- (void)dealloc
{
    [_MACAddress release];
    [_attachment release];
    [super dealloc];
}
@end

@implementation VZVirtioNetworkDeviceConfiguration
- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _MACAddress = [[VZMACAddress randomLocallyAdministeredAddress] copy];
    return self;
}
@end
