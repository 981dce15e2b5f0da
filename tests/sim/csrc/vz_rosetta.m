/*
 * Fake Rosetta for Linux: VZLinuxRosettaDirectoryShare (macOS 13) and its caching
 * options (macOS 14), Apple silicon only on a Mac.
 *
 * What the fake enforces, and where Apple says so:
 * - +availability is VZLinuxRosettaAvailability: NotSupported=0, NotInstalled=1,
 *   Installed=2 (VZLinuxRosettaDirectoryShare.h; vz-api.tsv). Tests choose it
 *   (sim_rosetta_set_availability); the default is NotInstalled, a Mac on which the
 *   user has not installed Rosetta yet.
 * - -initWithError: fails (nil and an error) unless Rosetta is installed: "The call
 *   returns an error if Rosetta is not available for a directory share"
 *   (VZLinuxRosettaDirectoryShare.h). The error code is not documented; the fake
 *   uses VZErrorNotSupported (10).
 * - +installRosettaWithCompletionHandler: calls its handler later "on an arbitrary
 *   queue" (VZLinuxRosettaDirectoryShare.h, vz-api.tsv notes): here a private queue
 *   of its own, never the caller's thread and never inline, after a delay the seed
 *   chooses (sim_schedule.c). Success makes
 *   availability Installed. Tests choose the outcome: success, a failure code (the
 *   user cancelled, the download failed), or a handler released without being
 *   called (sim_rosetta_set_install_outcome). On a Mac that cannot run Rosetta the
 *   install fails (VZErrorNotSupported; the code is not documented).
 * - -[VZLinuxRosettaUnixSocketCachingOptions initWithPath:error:] and
 *   -[VZLinuxRosettaAbstractSocketCachingOptions initWithName:error:] return nil and
 *   an error when the value is longer than maximumPathLength / maximumNameLength
 *   UTF-8 bytes (their headers). Both limits are "as defined by the sockaddr_un
 *   structure in Linux": sun_path is 108 bytes, so 107 (a path needs its NUL, an
 *   abstract name its leading NUL). Apple does not publish the numbers.
 * - -init of the Unix socket options uses /run/rosettad/rosetta.sock (its header).
 * - Passing nil for a nonnull argument raises, as the other fakes do.
 * - -[VZLinuxRosettaDirectoryShare init]: the designated initializer is
 *   -initWithError: (its header); what a plain -init does is not documented, so the
 *   fake refuses it loudly (stricter than documented: it catches `+new`, the
 *   mistake arcbox made).
 * A running VZVirtioFileSystemDevice refuses a Rosetta share (vz_runtime_devices.m).
 */
#include <Block.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "sim_vz_arm64.h"

/* The libdispatch entry point (dispatch.c) sim.h does not declare. */
const void *dispatch_queue_attr_make_with_autorelease_frequency(const void *attr,
                                                                unsigned long frequency);

/* sockaddr_un.sun_path on Linux is 108 bytes. */
#define SIM_ROSETTA_SOCKET_LIMIT 107

static pthread_mutex_t rosetta_lock = PTHREAD_MUTEX_INITIALIZER;
static long availability = SimRosettaNotInstalled;
static long install_outcome; /* 0 succeed, > 0 fail with that code, -1 never answer */
static long install_calls;

/* Live shares, unretained: a share adds itself in init and removes itself in dealloc. */
#define SIM_MAX_ROSETTA_SHARES 64
static VZLinuxRosettaDirectoryShare *live_shares[SIM_MAX_ROSETTA_SHARES];

static NSError *rosetta_error(NSInteger code, NSString *reason)
{
    return [NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
        NSLocalizedDescriptionKey : reason,
        NSLocalizedFailureReasonErrorKey : reason,
    }];
}

static long current_availability(void)
{
    pthread_mutex_lock(&rosetta_lock);
    long value = availability;
    pthread_mutex_unlock(&rosetta_lock);
    return value;
}

/* ---- caching options ---- */

@implementation VZLinuxRosettaCachingOptions
@end

static BOOL socket_value_fits(NSString *value, NSString *what, NSError **error)
{
    NSUInteger bytes = [value lengthOfBytesUsingEncoding:NSUTF8StringEncoding];
    if (bytes <= SIM_ROSETTA_SOCKET_LIMIT) return YES;
    if (error != NULL)
        *error = sim_vz_error(VZErrorInvalidVirtualMachineConfiguration,
                              [NSString stringWithFormat:@"The %@ is %lu bytes long in UTF-8; "
                                                          "the limit is %d.",
                                                         what, (unsigned long)bytes,
                                                         SIM_ROSETTA_SOCKET_LIMIT]);
    return NO;
}

@implementation VZLinuxRosettaUnixSocketCachingOptions
@synthesize path = _path;

+ (NSUInteger)maximumPathLength { return SIM_ROSETTA_SOCKET_LIMIT; }

- (instancetype)initWithPath:(NSString *)path error:(NSError **)error
{
    if (path == nil || ![path isKindOfClass:[NSString class]])
        SIM_RAISE(@"-[VZLinuxRosettaUnixSocketCachingOptions initWithPath:error:]: the path "
                   "must be a string");
    if (!socket_value_fits(path, @"Rosetta caching socket path", error)) {
        [self release];
        return nil;
    }
    if ((self = [super init]) == nil) return nil;
    _path = [path copy];
    return self;
}

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _path = [@"/run/rosettad/rosetta.sock" copy];
    return self;
}

- (void)dealloc
{
    [_path release];
    [super dealloc];
}
@end

@implementation VZLinuxRosettaAbstractSocketCachingOptions
@synthesize name = _name;

+ (NSUInteger)maximumNameLength { return SIM_ROSETTA_SOCKET_LIMIT; }

- (instancetype)initWithName:(NSString *)name error:(NSError **)error
{
    if (name == nil || ![name isKindOfClass:[NSString class]])
        SIM_RAISE(@"-[VZLinuxRosettaAbstractSocketCachingOptions initWithName:error:]: the "
                   "name must be a string");
    if (!socket_value_fits(name, @"Rosetta caching socket name", error)) {
        [self release];
        return nil;
    }
    if ((self = [super init]) == nil) return nil;
    _name = [name copy];
    return self;
}

- (void)dealloc
{
    [_name release];
    [super dealloc];
}
@end

/* ---- the share ---- */

struct install {
    void (^handler)(NSError *);
    long outcome;
};

static void install_finish(void *ctx)
{
    struct install *in = ctx;
    void *pool = objc_autoreleasePoolPush();
    if (in->outcome >= 0) {
        NSError *error = nil;
        pthread_mutex_lock(&rosetta_lock);
        if (availability == SimRosettaNotSupported)
            error = rosetta_error(VZErrorNotSupported,
                                  @"Rosetta is not supported on this Mac.");
        else if (in->outcome > 0)
            error = rosetta_error(in->outcome, @"Rosetta could not be installed.");
        else
            availability = SimRosettaInstalled;
        pthread_mutex_unlock(&rosetta_lock);
        in->handler(error);
    }
    /* outcome -1: the framework drops the request without answering. */
    objc_autoreleasePoolPop(pool);
    _Block_release(in->handler);
    free(in);
}

@implementation VZLinuxRosettaDirectoryShare
@synthesize options = _options;

+ (NSInteger)availability { return current_availability(); }

+ (void)installRosettaWithCompletionHandler:(void (^)(NSError *))completionHandler
{
    if (completionHandler == NULL)
        SIM_RAISE(@"+[VZLinuxRosettaDirectoryShare installRosettaWithCompletionHandler:]: the "
                   "completion handler must not be nil");
    struct install *in = malloc(sizeof *in);
    if (in == NULL) sim_fatal("out of memory");
    in->handler = _Block_copy(completionHandler);
    pthread_mutex_lock(&rosetta_lock);
    in->outcome = install_outcome;
    install_calls++;
    pthread_mutex_unlock(&rosetta_lock);
    /* "invoked on an arbitrary queue": one of the framework's own, later. */
    const void *attr = dispatch_queue_attr_make_with_autorelease_frequency(NULL, 1);
    dispatch_queue_t queue = dispatch_queue_create("com.apple.Virtualization.rosetta-install", attr);
    /* How long the download takes: the seed chooses (never inline). */
    sim_after_ms(queue, sim_choose(2) == 0 ? 0 : 1 + sim_choose(10), in, install_finish);
    dispatch_release(queue);
}

- (instancetype)init
{
    SIM_RAISE(@"-[VZLinuxRosettaDirectoryShare init]: use the designated initializer "
               "-initWithError:");
    return nil;
}

- (instancetype)initWithError:(NSError **)error
{
    long now = current_availability();
    if (now != SimRosettaInstalled) {
        if (error != NULL)
            *error = rosetta_error(VZErrorNotSupported,
                                   now == SimRosettaNotInstalled
                                       ? @"Rosetta is not installed."
                                       : @"Rosetta is not supported on this Mac.");
        [self release];
        return nil;
    }
    if ((self = [super init]) == nil) return nil;
    pthread_mutex_lock(&rosetta_lock);
    size_t i = 0;
    while (i < SIM_MAX_ROSETTA_SHARES && live_shares[i] != nil) i++;
    if (i == SIM_MAX_ROSETTA_SHARES) sim_fatal("more than %d live Rosetta shares", SIM_MAX_ROSETTA_SHARES);
    live_shares[i] = self;
    pthread_mutex_unlock(&rosetta_lock);
    return self;
}

- (void)setOptions:(VZLinuxRosettaCachingOptions *)options
{
    if (options != nil && ![options isKindOfClass:[VZLinuxRosettaCachingOptions class]])
        SIM_RAISE(@"-[VZLinuxRosettaDirectoryShare setOptions:]: not a "
                   "VZLinuxRosettaCachingOptions");
    pthread_mutex_lock(&rosetta_lock);
    [options retain];
    [_options release];
    _options = options;
    pthread_mutex_unlock(&rosetta_lock);
}

- (void)dealloc
{
    pthread_mutex_lock(&rosetta_lock);
    for (size_t i = 0; i < SIM_MAX_ROSETTA_SHARES; i++)
        if (live_shares[i] == self) live_shares[i] = nil;
    pthread_mutex_unlock(&rosetta_lock);
    [_options release];
    [super dealloc];
}

/* Under rosetta_lock. */
- (NSString *)sim_describeOptions
{
    if (_options == nil) return @"none";
    if ([_options isKindOfClass:[VZLinuxRosettaUnixSocketCachingOptions class]])
        return [@"unix:" stringByAppendingString:[(VZLinuxRosettaUnixSocketCachingOptions *)_options path]];
    if ([_options isKindOfClass:[VZLinuxRosettaAbstractSocketCachingOptions class]])
        return [@"abstract:" stringByAppendingString:[(VZLinuxRosettaAbstractSocketCachingOptions *)_options name]];
    return @"unknown";
}
@end

/* ---- control hooks ---- */

void sim_rosetta_set_availability(long value)
{
    pthread_mutex_lock(&rosetta_lock);
    availability = value;
    pthread_mutex_unlock(&rosetta_lock);
}

void sim_rosetta_set_install_outcome(long outcome)
{
    pthread_mutex_lock(&rosetta_lock);
    install_outcome = outcome;
    pthread_mutex_unlock(&rosetta_lock);
}

long sim_rosetta_install_calls(void)
{
    pthread_mutex_lock(&rosetta_lock);
    long n = install_calls;
    pthread_mutex_unlock(&rosetta_lock);
    return n;
}

size_t sim_rosetta_describe_shares(char *buffer, size_t size)
{
    void *pool = objc_autoreleasePoolPush();
    NSMutableString *all = [NSMutableString string];
    pthread_mutex_lock(&rosetta_lock);
    for (size_t i = 0; i < SIM_MAX_ROSETTA_SHARES; i++)
        if (live_shares[i] != nil) [all appendFormat:@"%@\n", [live_shares[i] sim_describeOptions]];
    pthread_mutex_unlock(&rosetta_lock);
    const char *text = [all UTF8String];
    size_t needed = strlen(text);
    if (buffer != NULL && size > 0) {
        size_t n = needed < size - 1 ? needed : size - 1;
        memcpy(buffer, text, n);
        buffer[n] = '\0';
    }
    objc_autoreleasePoolPop(pool);
    return needed;
}
