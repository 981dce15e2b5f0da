/*
 * Fake storage: VZDiskImageStorageDeviceAttachment, VZDiskBlockDeviceStorageDeviceAttachment,
 * VZNetworkBlockDeviceStorageDeviceAttachment, VZVirtioBlockDeviceConfiguration,
 * VZUSBMassStorageDeviceConfiguration and VZNVMExpressControllerDeviceConfiguration.
 *
 * What is documented (SDK headers, vz-api.tsv) is followed as written: raw images only,
 * sizes a multiple of 512 bytes, nil + NSError from the init...error: initializers, file
 * URLs only (VZ raises on any other URL), block device identifiers of at most 20 ASCII
 * bytes (the setter requires a valid one), NBD URLs checked by +validateURL:error:.
 *
 * Where Apple documents nothing, the fake takes the strict side so a test proves the
 * crate never gets there: an out-of-range enum value, a non-positive or non-finite NBD
 * timeout and a nil object argument raise, like VZ's Vz::raise_invalid_argument_exception.
 *
 * VZNVMExpressControllerDeviceConfiguration is valid only with a
 * VZGenericPlatformConfiguration; the simulated VZVirtualMachineConfiguration always has
 * one, so the fake has no check to make.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sim_vz.h"
#include <objc/runtime.h>
#include "sim_vz_runtime.h"

static void require_file_url(NSURL *url, NSString *what)
{
    if (url == nil || ![url isFileURL])
        SIM_RAISE(@"The URL %@ is not a file URL (%@).", url, what);
}

static void require_object(id object, NSString *what)
{
    if (object == nil) SIM_RAISE(@"%@ must not be nil.", what);
}

static NSError *posix_error(int code)
{
    return [NSError errorWithDomain:NSPOSIXErrorDomain code:code userInfo:nil];
}

/* ---- abstract bases ---- */

/* Apple's abstract base has no public initializer; the fake shares one with its
 * subclasses, which each declare -initWithAttachment:. */
@interface VZStorageDeviceConfiguration ()
- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment;
@end

@implementation VZStorageDeviceAttachment
@end

@implementation VZStorageDeviceConfiguration
@synthesize attachment = _attachment;

/* The designated initializer of every concrete subclass. */
- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment
{
    require_object(attachment, @"The storage device attachment");
    if (![attachment isKindOfClass:[VZStorageDeviceAttachment class]])
        SIM_RAISE(@"%@ is not a VZStorageDeviceAttachment.", attachment);
    if ((self = [super init]) == nil) return nil;
    _attachment = [attachment retain];
    return self;
}

- (id)copyWithZone:(NSZone *)zone
{
    return [[[self class] allocWithZone:zone] initWithAttachment:_attachment];
}

- (void)dealloc
{
    [_attachment release];
    [super dealloc];
}
@end

/* ---- VZDiskImageStorageDeviceAttachment ---- */

@implementation VZDiskImageStorageDeviceAttachment
@synthesize URL = _URL;
@synthesize readOnly = _readOnly;
@synthesize cachingMode = _cachingMode;
@synthesize synchronizationMode = _synchronizationMode;

- (instancetype)initWithURL:(NSURL *)URL readOnly:(BOOL)readOnly error:(NSError **)error
{
    return [self initWithURL:URL
                    readOnly:readOnly
                 cachingMode:0 /* VZDiskImageCachingModeAutomatic */
         synchronizationMode:1 /* VZDiskImageSynchronizationModeFull */
                       error:error];
}

- (instancetype)initWithURL:(NSURL *)URL
                   readOnly:(BOOL)readOnly
                cachingMode:(NSInteger)cachingMode
        synchronizationMode:(NSInteger)synchronizationMode
                      error:(NSError **)error
{
    require_file_url(URL, @"disk image");
    if (cachingMode < 0 || cachingMode > 2)
        SIM_RAISE(@"Invalid disk image caching mode %ld.", (long)cachingMode);
    if (synchronizationMode < 1 || synchronizationMode > 3)
        SIM_RAISE(@"Invalid disk image synchronization mode %ld.", (long)synchronizationMode);

    /* VZ opens the image when the attachment is made, and refuses a size that is not a
     * multiple of 512 there, with VZErrorDomain code 5 "The disk image format is not
     * recognized." (apple/containerization#832 review; tinylabscom/mvm#1216 shows a
     * missing file failing here too, with NSPOSIXErrorDomain 45 on macOS 26; the fake
     * reports the errno of its open(), unverified for older releases). */
    int fd = open([[URL path] fileSystemRepresentation], readOnly ? O_RDONLY : O_RDWR);
    if (fd < 0) {
        if (error) *error = posix_error(errno);
        [self release];
        return nil;
    }
    struct stat st;
    NSString *reason = nil;
    if (fstat(fd, &st) != 0)
        reason = @"The disk image cannot be read.";
    else if (!S_ISREG(st.st_mode))
        reason = @"The disk image is not a regular file.";
    else if (st.st_size % 512 != 0)
        reason = @"The disk image format is not recognized.";
    close(fd);
    if (reason != nil) {
        if (error) *error = sim_vz_error(VZErrorInvalidDiskImage, reason);
        [self release];
        return nil;
    }

    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    _readOnly = readOnly;
    _cachingMode = cachingMode;
    _synchronizationMode = synchronizationMode;
    return self;
}

- (void)dealloc
{
    [_URL release];
    [super dealloc];
}
@end

/* ---- the NBD client of a running VM ---- */

/* The next NBD client to connect fails with this VZErrorDomain code instead (0: none). */
static long nbd_fail_next;

struct nbd_connect {
    VZVirtualMachine *vm; /* held (sim_hold) */
    VZNetworkBlockDeviceStorageDeviceAttachment *attachment; /* retained */
};

/* On the VM queue, a moment after the start: the client tells its delegate how the
 * connection went (the queue is not stated by Apple; the tsv treats it as the VM's). */
static void nbd_finish_connect(void *ctx)
{
    struct nbd_connect *c = ctx;
    VZVirtualMachine *vm = c->vm;
    VZNetworkBlockDeviceStorageDeviceAttachment *attachment = c->attachment;
    [vm sim_assertQueue:"NBD client callback"];
    NSInteger state = [vm state];
    if (state == VZVirtualMachineStateRunning || state == VZVirtualMachineStatePaused) {
        long code = __atomic_exchange_n(&nbd_fail_next, 0, __ATOMIC_SEQ_CST);
        id delegate = [attachment delegate];
        [vm sim_enterCallback];
        if (code != 0) {
            NSError *error = [NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
                NSLocalizedDescriptionKey : @"The NBD client failed (injected by the simulator).",
            }];
            if ([delegate respondsToSelector:@selector(attachment:didEncounterError:)])
                [delegate attachment:attachment didEncounterError:error];
        } else if ([delegate respondsToSelector:@selector(attachmentWasConnected:)]) {
            [delegate attachmentWasConnected:attachment];
        }
        [vm sim_exitCallback];
    }
    [attachment release];
    [vm sim_unhold];
    free(c);
}

void sim_storage_vm_started(VZVirtualMachine *vm)
{
    [vm sim_assertQueue:"sim_storage_vm_started"];
    Class nbd = objc_getClass("VZNetworkBlockDeviceStorageDeviceAttachment");
    if (nbd == Nil) return; /* hidden: a release before 14.0 */
    for (VZStorageDeviceConfiguration *device in [[vm sim_configuration] storageDevices]) {
        id attachment = [device attachment];
        if (![attachment isKindOfClass:nbd]) continue;
        struct nbd_connect *c = malloc(sizeof *c);
        if (c == NULL) sim_fatal("out of memory");
        c->vm = [vm sim_hold];
        c->attachment = [attachment retain];
        /* How long the handshake takes is the server's and Apple's: the scheduler's. */
        sim_after_ms([vm sim_queue], 1 + sim_choose(5), c, nbd_finish_connect);
    }
}

void sim_nbd_fail_next(long code) { __atomic_store_n(&nbd_fail_next, code, __ATOMIC_SEQ_CST); }

/* ---- VZDiskBlockDeviceStorageDeviceAttachment ---- */

@implementation VZDiskBlockDeviceStorageDeviceAttachment
@synthesize fileHandle = _fileHandle;
@synthesize readOnly = _readOnly;
@synthesize synchronizationMode = _synchronizationMode;

- (instancetype)initWithFileHandle:(NSFileHandle *)fileHandle
                          readOnly:(BOOL)readOnly
               synchronizationMode:(NSInteger)synchronizationMode
                             error:(NSError **)error
{
    require_object(fileHandle, @"The file handle");
    if (synchronizationMode < 0 || synchronizationMode > 1)
        SIM_RAISE(@"Invalid disk synchronization mode %ld.", (long)synchronizationMode);
    struct stat st;
    if (fstat([fileHandle fileDescriptor], &st) != 0) {
        if (error) *error = posix_error(errno);
        [self release];
        return nil;
    }
    /* "File handle to a block device" (a raw disk such as /dev/rdisk4 is a
     * character device). */
    if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) {
        if (error) *error = sim_vz_error(VZErrorInvalidDiskImage,
                                         @"The file handle does not refer to a disk block device.");
        [self release];
        return nil;
    }
    if ((self = [super init]) == nil) return nil;
    /* "The file handle is retained by the disk attachment." */
    _fileHandle = [fileHandle retain];
    _readOnly = readOnly;
    _synchronizationMode = synchronizationMode;
    return self;
}

- (void)dealloc
{
    [_fileHandle release];
    [super dealloc];
}
@end

/* ---- VZNetworkBlockDeviceStorageDeviceAttachment ---- */

/* The timeout of -initWithURL:error: (not documented; the value Apple's examples use). */
#define SIM_NBD_DEFAULT_TIMEOUT 5.0

/* Why `url` is not an NBD URI (https://github.com/NetworkBlockDevice/nbd/blob/master/doc/uri.md),
 * or nil. */
static NSString *nbd_url_problem(NSURL *url)
{
    NSString *scheme = [[url scheme] lowercaseString];
    BOOL unix_socket;
    if ([scheme isEqualToString:@"nbd"] || [scheme isEqualToString:@"nbds"])
        unix_socket = NO;
    else if ([scheme isEqualToString:@"nbd+unix"] || [scheme isEqualToString:@"nbds+unix"])
        unix_socket = YES;
    else
        return [NSString stringWithFormat:@"The URL scheme \"%@\" is not an NBD scheme.", [url scheme]];
    NSString *host = [url host];
    if (unix_socket) {
        if ([host length] != 0) return @"An NBD URL over a Unix socket must not have a host.";
        for (NSString *pair in [[url query] componentsSeparatedByString:@"&"]) {
            if ([pair hasPrefix:@"socket="] && [pair length] > [@"socket=" length]) return nil;
        }
        return @"An NBD URL over a Unix socket must have a socket query parameter.";
    }
    if ([host length] == 0) return @"The NBD URL has no host.";
    NSNumber *port = [url port];
    if (port != nil && ([port integerValue] < 1 || [port integerValue] > 65535))
        return @"The NBD URL has an invalid port.";
    return nil;
}

@implementation VZNetworkBlockDeviceStorageDeviceAttachment
@synthesize URL = _URL;
@synthesize timeout = _timeout;
@synthesize forcedReadOnly = _forcedReadOnly;
@synthesize synchronizationMode = _synchronizationMode;
@synthesize delegate = _delegate;

+ (BOOL)validateURL:(NSURL *)URL error:(NSError **)error
{
    require_object(URL, @"The NBD URL");
    NSString *reason = nbd_url_problem(URL);
    if (reason == nil) return YES;
    if (error) *error = sim_vz_error(VZErrorInvalidVirtualMachineConfiguration, reason);
    return NO;
}

- (instancetype)initWithURL:(NSURL *)URL error:(NSError **)error
{
    return [self initWithURL:URL
                     timeout:SIM_NBD_DEFAULT_TIMEOUT
              forcedReadOnly:NO
         synchronizationMode:0 /* VZDiskSynchronizationModeFull */
                       error:error];
}

- (instancetype)initWithURL:(NSURL *)URL
                    timeout:(NSTimeInterval)timeout
             forcedReadOnly:(BOOL)forcedReadOnly
        synchronizationMode:(NSInteger)synchronizationMode
                      error:(NSError **)error
{
    require_object(URL, @"The NBD URL");
    if (!isfinite(timeout) || timeout <= 0)
        SIM_RAISE(@"Invalid NBD timeout %f.", timeout);
    if (synchronizationMode < 0 || synchronizationMode > 1)
        SIM_RAISE(@"Invalid disk synchronization mode %ld.", (long)synchronizationMode);
    if (![[self class] validateURL:URL error:error]) {
        [self release];
        return nil;
    }
    /* No connection is made here: the client connects when the VM starts. */
    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    _timeout = timeout;
    _forcedReadOnly = forcedReadOnly;
    _synchronizationMode = synchronizationMode;
    return self;
}

- (void)dealloc
{
    [_URL release];
    [super dealloc];
}
@end

/* ---- VZVirtioBlockDeviceConfiguration ---- */

/* Why `identifier` is not a valid virtio-blk identifier, or nil: "at most 20 bytes in
 * length and ASCII-encodable". */
static NSString *identifier_problem(NSString *identifier)
{
    if (identifier == nil) return @"The block device identifier must not be nil.";
    NSData *ascii = [identifier dataUsingEncoding:NSASCIIStringEncoding allowLossyConversion:NO];
    if (ascii == nil) return @"The block device identifier must be ASCII-encodable.";
    if ([ascii length] > 20) return @"The block device identifier must be at most 20 bytes long.";
    return nil;
}

@implementation VZVirtioBlockDeviceConfiguration
@synthesize blockDeviceIdentifier = _blockDeviceIdentifier;

+ (BOOL)validateBlockDeviceIdentifier:(NSString *)blockDeviceIdentifier error:(NSError **)error
{
    NSString *reason = identifier_problem(blockDeviceIdentifier);
    if (reason == nil) return YES;
    if (error) *error = sim_vz_error(VZErrorInvalidVirtualMachineConfiguration, reason);
    return NO;
}

- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment
{
    if ((self = [super initWithAttachment:attachment]) == nil) return nil;
    _blockDeviceIdentifier = @"";
    return self;
}

- (void)setBlockDeviceIdentifier:(NSString *)identifier
{
    NSString *reason = identifier_problem(identifier);
    if (reason != nil) SIM_RAISE(@"%@", reason);
    NSString *old = _blockDeviceIdentifier;
    _blockDeviceIdentifier = [identifier copy];
    [old release];
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioBlockDeviceConfiguration *copy = [super copyWithZone:zone];
    [copy setBlockDeviceIdentifier:_blockDeviceIdentifier];
    return copy;
}

- (void)dealloc
{
    [_blockDeviceIdentifier release];
    [super dealloc];
}
@end

/* ---- VZUSBMassStorageDeviceConfiguration ---- */

@implementation VZUSBMassStorageDeviceConfiguration
@synthesize uuid = _uuid;

- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment
{
    if ((self = [super initWithAttachment:attachment]) == nil) return nil;
    _uuid = [[NSUUID alloc] init]; /* generated */
    return self;
}

- (void)setUuid:(NSUUID *)uuid
{
    require_object(uuid, @"The USB device UUID");
    NSUUID *old = _uuid;
    _uuid = [uuid copy];
    [old release];
}

- (id)copyWithZone:(NSZone *)zone
{
    VZUSBMassStorageDeviceConfiguration *copy = [super copyWithZone:zone];
    [copy setUuid:_uuid];
    return copy;
}

- (void)dealloc
{
    [_uuid release];
    [super dealloc];
}
@end

/* ---- VZNVMExpressControllerDeviceConfiguration ---- */

@implementation VZNVMExpressControllerDeviceConfiguration
- (instancetype)initWithAttachment:(VZStorageDeviceAttachment *)attachment
{
    return [super initWithAttachment:attachment];
}
@end
