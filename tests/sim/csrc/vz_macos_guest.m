/*
 * Fake macOS-guest configuration classes (macOS 12, Apple silicon only on a Mac):
 * VZMacOSRestoreImage, VZMacOSConfigurationRequirements, VZMacHardwareModel,
 * VZMacMachineIdentifier, VZMacAuxiliaryStorage, VZMacPlatformConfiguration and
 * VZMacOSBootLoader. Selectors and types: vz-api.tsv.
 *
 * The fake restore image. A real IPSW is a zip archive; the fake is a file that
 * starts with a zip local-file-header magic followed by a header line, then
 * key=value lines (tests write it, tests/macos_guest_config.rs):
 *
 *     PK\x03\x04SIMIPSW1\n
 *     build=24A335\n
 *     version=15.0.1\n
 *     model=VirtualMac2,1\n
 *     cpus=2\n
 *     memory=4294967296\n
 *
 * The fake hardware model's data representation is "SIMVZHWM" and the model name;
 * this simulated Mac supports the models whose name starts with "VirtualMac2,"
 * (anything else plays a model of a newer Mac: isSupported is NO).
 *
 * What the fake enforces, and where Apple says so:
 * - +loadFileURL:completionHandler: raises unless the URL is a file URL
 *   (vz-api.tsv: "THROWS if the URL is not a local file URL"); the handler runs
 *   later on a private queue, never inline (vz-api.tsv: "called on an ARBITRARY
 *   thread"), with exactly one of image/error non-nil. An unreadable file fails with
 *   VZErrorRestoreImageLoadFailed (10004), a file that is not a (fake) IPSW with
 *   VZErrorInvalidRestoreImage (10005); which code Apple uses for which case is not
 *   documented.
 * - +fetchLatestSupportedWithCompletionHandler: answers the same way with an https
 *   URL and this Mac's newest release (sim_macos()); a test can make it fail with
 *   VZErrorRestoreImageCatalogLoadFailed (10001).
 * - mostFeaturefulSupportedConfiguration is nil when the model is not supported
 *   (vz-api.tsv); isSupported (13.0) says the same.
 * - -[VZMacHardwareModel initWithDataRepresentation:] and the machine identifier's
 *   return nil for bytes that are not theirs (vz-api.tsv: "nil if the bytes are not
 *   a valid model (not THROWS)").
 * - -initCreatingStorageAtURL:hardwareModel:options:error: fails (nil and an error)
 *   when the file exists and options lack AllowOverwrite (1) (vz-api.tsv); raises on
 *   a non-file URL or a nil model. The error's domain and code are not documented:
 *   the fake uses VZErrorInternal (1).
 * - -initWithURL: (13.0) and the deprecated -initWithContentsOfURL: (12.0) have no
 *   error out-param; they raise on a non-file URL (vz-api.tsv: "treat non-file URL
 *   as THROWS - unverified").
 * - VZMacGraphicsDisplayConfiguration neither raises nor clamps in its initializer;
 *   a display with a size or density of 0 or less fails -validateWithError: through
 *   its device (as the virtio scanouts do, vz_devices.m; Apple documents no rule).
 *   From macOS 14 the VM has a runtime VZMacGraphicsDevice for it, with a
 *   VZMacGraphicsDisplay per display (vz_graphics_runtime.m).
 * - VZMacKeyboardConfiguration and VZMacTrackpadConfiguration have nothing but
 *   -init (their headers).
 * - VZMacPlatformConfiguration does not validate without auxiliary storage or with
 *   an unsupported model (vz-api.tsv: "nil by default -> configuration does not
 *   validate"; "if NO no configuration using it will validate").
 */
#include <Block.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "sim_vz_arm64.h"

const void *dispatch_queue_attr_make_with_autorelease_frequency(const void *attr,
                                                                unsigned long frequency);

static const char model_magic[8] = "SIMVZHWM";
static const char identifier_magic[8] = "SIMVZMMI";
static const char aux_magic[8] = "SIMVZAUX";

static pthread_mutex_t guest_lock = PTHREAD_MUTEX_INITIALIZER;
static long image_requests;
static long fetch_fail_code;

long sim_restore_image_requests(void)
{
    pthread_mutex_lock(&guest_lock);
    long n = image_requests;
    pthread_mutex_unlock(&guest_lock);
    return n;
}

void sim_restore_image_fetch_fail_next(long code)
{
    pthread_mutex_lock(&guest_lock);
    fetch_fail_code = code;
    pthread_mutex_unlock(&guest_lock);
}

static NSError *guest_error(NSInteger code, NSString *reason)
{
    return [NSError errorWithDomain:VZErrorDomain code:code userInfo:@{
        NSLocalizedDescriptionKey : reason,
        NSLocalizedFailureReasonErrorKey : reason,
    }];
}

/* ---- hardware model ---- */

@implementation VZMacHardwareModel
@synthesize dataRepresentation = _dataRepresentation;

- (instancetype)init
{
    SIM_RAISE(@"-[VZMacHardwareModel init] is unavailable");
    return nil;
}

- (instancetype)initWithDataRepresentation:(NSData *)data
{
    if (data == nil) SIM_RAISE(@"-[VZMacHardwareModel initWithDataRepresentation:]: nil data");
    if ((self = [super init]) == nil) return nil;
    if ([data length] <= sizeof model_magic
        || memcmp([data bytes], model_magic, sizeof model_magic) != 0) {
        [self release];
        return nil;
    }
    _dataRepresentation = [data copy];
    return self;
}

- (BOOL)isSupported
{
    const char *bytes = [_dataRepresentation bytes];
    size_t len = [_dataRepresentation length] - sizeof model_magic;
    static const char supported[] = "VirtualMac2,";
    return len >= strlen(supported)
           && memcmp(bytes + sizeof model_magic, supported, strlen(supported)) == 0;
}

- (BOOL)isEqual:(id)other
{
    return [other isKindOfClass:[VZMacHardwareModel class]]
           && [_dataRepresentation isEqual:[other dataRepresentation]];
}

- (id)copyWithZone:(NSZone *)zone { return [self retain]; }

- (void)dealloc
{
    [_dataRepresentation release];
    [super dealloc];
}
@end

static VZMacHardwareModel *model_named(NSString *name)
{
    NSMutableData *data = [NSMutableData dataWithBytes:model_magic length:sizeof model_magic];
    [data appendData:[name dataUsingEncoding:NSUTF8StringEncoding]];
    return [[[VZMacHardwareModel alloc] initWithDataRepresentation:data] autorelease];
}

/* ---- machine identifier ---- */

@implementation VZMacMachineIdentifier
@synthesize dataRepresentation = _dataRepresentation;

- (instancetype)init
{
    unsigned char bytes[sizeof identifier_magic + 16];
    memcpy(bytes, identifier_magic, sizeof identifier_magic);
    for (size_t i = sizeof identifier_magic; i < sizeof bytes; i++) bytes[i] = (unsigned char)random();
    return [self initWithDataRepresentation:[NSData dataWithBytes:bytes length:sizeof bytes]];
}

- (instancetype)initWithDataRepresentation:(NSData *)data
{
    if (data == nil) SIM_RAISE(@"-[VZMacMachineIdentifier initWithDataRepresentation:]: nil data");
    if ((self = [super init]) == nil) return nil;
    if ([data length] != sizeof identifier_magic + 16
        || memcmp([data bytes], identifier_magic, sizeof identifier_magic) != 0) {
        [self release];
        return nil;
    }
    _dataRepresentation = [data copy];
    return self;
}

- (BOOL)isEqual:(id)other
{
    return [other isKindOfClass:[VZMacMachineIdentifier class]]
           && [_dataRepresentation isEqual:[other dataRepresentation]];
}

- (id)copyWithZone:(NSZone *)zone { return [self retain]; }

- (void)dealloc
{
    [_dataRepresentation release];
    [super dealloc];
}
@end

/* ---- auxiliary storage ---- */

static void require_file_url(NSURL *url, const char *method)
{
    if (url == nil || ![url isKindOfClass:[NSURL class]] || ![url isFileURL])
        SIM_RAISE(@"-[VZMacAuxiliaryStorage %s]: the URL must be a file URL", method);
}

@implementation VZMacAuxiliaryStorage
@synthesize URL = _URL;

- (instancetype)init
{
    SIM_RAISE(@"-[VZMacAuxiliaryStorage init] is unavailable");
    return nil;
}

- (instancetype)initWithURL:(NSURL *)URL
{
    require_file_url(URL, "initWithURL:");
    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    return self;
}

- (instancetype)initWithContentsOfURL:(NSURL *)URL
{
    require_file_url(URL, "initWithContentsOfURL:");
    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    return self;
}

- (instancetype)initCreatingStorageAtURL:(NSURL *)URL
                           hardwareModel:(VZMacHardwareModel *)hardwareModel
                                 options:(NSUInteger)options
                                   error:(NSError **)error
{
    require_file_url(URL, "initCreatingStorageAtURL:hardwareModel:options:error:");
    if (hardwareModel == nil || ![hardwareModel isKindOfClass:[VZMacHardwareModel class]])
        SIM_RAISE(@"-[VZMacAuxiliaryStorage initCreatingStorageAtURL:...]: nil hardware model");
    NSString *path = [URL path];
    NSError *failure = nil;
    if ((options & 1) == 0 && [[NSFileManager defaultManager] fileExistsAtPath:path])
        failure = guest_error(VZErrorInternal, @"The auxiliary storage file already exists.");
    if (failure == nil) {
        NSMutableData *data = [NSMutableData dataWithBytes:aux_magic length:sizeof aux_magic];
        [data appendData:[hardwareModel dataRepresentation]];
        if (![data writeToFile:path atomically:NO])
            failure = guest_error(VZErrorInternal, @"The auxiliary storage could not be written.");
    }
    if (failure != nil) {
        if (error != NULL) *error = failure;
        [self release];
        return nil;
    }
    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    return self;
}

- (void)dealloc
{
    [_URL release];
    [super dealloc];
}
@end

/* ---- requirements and restore image ---- */

@implementation VZMacOSConfigurationRequirements
@synthesize hardwareModel = _hardwareModel;
@synthesize minimumSupportedCPUCount = _minimumSupportedCPUCount;
@synthesize minimumSupportedMemorySize = _minimumSupportedMemorySize;

- (instancetype)init
{
    SIM_RAISE(@"-[VZMacOSConfigurationRequirements init] is unavailable");
    return nil;
}

- (instancetype)sim_initWithModel:(VZMacHardwareModel *)model cpus:(NSUInteger)cpus memory:(uint64_t)memory
{
    if ((self = [super init]) == nil) return nil;
    _hardwareModel = [model retain];
    _minimumSupportedCPUCount = cpus;
    _minimumSupportedMemorySize = memory;
    return self;
}

- (id)copyWithZone:(NSZone *)zone { return [self retain]; }

- (void)dealloc
{
    [_hardwareModel release];
    [super dealloc];
}
@end

@implementation VZMacOSRestoreImage
@synthesize URL = _URL;
@synthesize buildVersion = _buildVersion;

- (instancetype)init
{
    SIM_RAISE(@"-[VZMacOSRestoreImage init] is unavailable");
    return nil;
}

- (instancetype)sim_initWithURL:(NSURL *)url
                          build:(NSString *)build
                        version:(SimOperatingSystemVersion)version
                   requirements:(VZMacOSConfigurationRequirements *)requirements
{
    if ((self = [super init]) == nil) return nil;
    _URL = [url copy];
    _buildVersion = [build copy];
    _operatingSystemVersion = version;
    _requirements = [requirements retain];
    return self;
}

- (SimOperatingSystemVersion)operatingSystemVersion { return _operatingSystemVersion; }

- (BOOL)isSupported { return [[_requirements hardwareModel] isSupported]; }

- (VZMacOSConfigurationRequirements *)mostFeaturefulSupportedConfiguration
{
    return [[_requirements hardwareModel] isSupported] ? _requirements : nil;
}

- (void)dealloc
{
    [_URL release];
    [_buildVersion release];
    [_requirements release];
    [super dealloc];
}

struct image_request {
    void (^handler)(VZMacOSRestoreImage *, NSError *);
    NSURL *url;       /* retained; nil for a fetch */
    long fail_code;   /* fetch only */
};

/* Parses the fake IPSW at `url`; returns an image (autoreleased) or sets *error. */
static VZMacOSRestoreImage *parse_image(NSURL *url, NSError **error)
{
    NSData *data = [NSData dataWithContentsOfFile:[url path]];
    if (data == nil) {
        *error = guest_error(SimVZErrorRestoreImageLoadFailed,
                             @"The restore image could not be read.");
        return nil;
    }
    size_t magic = strlen(SIM_IPSW_MAGIC);
    if ([data length] < magic || memcmp([data bytes], SIM_IPSW_MAGIC, magic) != 0) {
        *error = guest_error(SimVZErrorInvalidRestoreImage, @"The restore image is invalid.");
        return nil;
    }
    NSString *text = [[[NSString alloc]
        initWithData:[data subdataWithRange:NSMakeRange(magic, [data length] - magic)]
            encoding:NSUTF8StringEncoding] autorelease];
    NSMutableDictionary *fields = [NSMutableDictionary dictionary];
    for (NSString *line in [text componentsSeparatedByString:@"\n"]) {
        NSRange eq = [line rangeOfString:@"="];
        if (eq.location == NSNotFound) continue;
        [fields setObject:[line substringFromIndex:eq.location + 1]
                   forKey:[line substringToIndex:eq.location]];
    }
    NSString *build = [fields objectForKey:@"build"];
    NSArray *version = [[fields objectForKey:@"version"] componentsSeparatedByString:@"."];
    NSString *model = [fields objectForKey:@"model"];
    NSString *cpus = [fields objectForKey:@"cpus"];
    NSString *memory = [fields objectForKey:@"memory"];
    if (build == nil || [version count] != 3 || model == nil || cpus == nil || memory == nil) {
        *error = guest_error(SimVZErrorInvalidRestoreImage, @"The restore image is invalid.");
        return nil;
    }
    SimOperatingSystemVersion v = {
        [[version objectAtIndex:0] integerValue],
        [[version objectAtIndex:1] integerValue],
        [[version objectAtIndex:2] integerValue],
    };
    VZMacOSConfigurationRequirements *requirements = [[[VZMacOSConfigurationRequirements alloc]
        sim_initWithModel:model_named(model)
                     cpus:(NSUInteger)[cpus integerValue]
                   memory:(uint64_t)[memory longLongValue]] autorelease];
    return [[[VZMacOSRestoreImage alloc] sim_initWithURL:url
                                                   build:build
                                                 version:v
                                            requirements:requirements] autorelease];
}

static void image_finish(void *ctx)
{
    struct image_request *in = ctx;
    void *pool = objc_autoreleasePoolPush();
    NSError *error = nil;
    VZMacOSRestoreImage *image = nil;
    if (in->url != nil) {
        image = parse_image(in->url, &error);
    } else if (in->fail_code != 0) {
        error = guest_error(in->fail_code, @"The restore image catalog could not be loaded.");
    } else {
        int release = sim_macos();
        SimOperatingSystemVersion v = {release / 100, release % 100, 0};
        VZMacOSConfigurationRequirements *requirements = [[[VZMacOSConfigurationRequirements alloc]
            sim_initWithModel:model_named(@"VirtualMac2,1")
                         cpus:2
                       memory:4ull << 30] autorelease];
        image = [[[VZMacOSRestoreImage alloc]
            sim_initWithURL:[NSURL URLWithString:@"https://updates.cdn-apple.com/sim/"
                                                  "UniversalMac_Restore.ipsw"]
                      build:@"SIM1A1"
                    version:v
               requirements:requirements] autorelease];
    }
    pthread_mutex_lock(&guest_lock);
    image_requests++;
    pthread_mutex_unlock(&guest_lock);
    in->handler(image, error);
    objc_autoreleasePoolPop(pool);
    _Block_release(in->handler);
    [in->url release];
    free(in);
}

static void image_start(NSURL *url, void (^handler)(VZMacOSRestoreImage *, NSError *))
{
    struct image_request *in = malloc(sizeof *in);
    if (in == NULL) sim_fatal("out of memory");
    in->handler = _Block_copy(handler);
    in->url = [url retain];
    pthread_mutex_lock(&guest_lock);
    in->fail_code = url == nil ? fetch_fail_code : 0;
    if (url == nil) fetch_fail_code = 0;
    pthread_mutex_unlock(&guest_lock);
    /* "called on an ARBITRARY thread": a private queue of the framework's, later. */
    const void *attr = dispatch_queue_attr_make_with_autorelease_frequency(NULL, 1);
    dispatch_queue_t queue = dispatch_queue_create("com.apple.Virtualization.restore-image", attr);
    sim_after_ms(queue, sim_choose(2) == 0 ? 0 : 1 + sim_choose(10), in, image_finish);
    dispatch_release(queue);
}

+ (void)loadFileURL:(NSURL *)fileURL
    completionHandler:(void (^)(VZMacOSRestoreImage *, NSError *))completionHandler
{
    if (fileURL == nil || ![fileURL isKindOfClass:[NSURL class]] || ![fileURL isFileURL])
        SIM_RAISE(@"+[VZMacOSRestoreImage loadFileURL:completionHandler:]: the URL must be a "
                   "local file URL");
    if (completionHandler == NULL)
        SIM_RAISE(@"+[VZMacOSRestoreImage loadFileURL:completionHandler:]: nil handler");
    image_start(fileURL, completionHandler);
}

+ (void)fetchLatestSupportedWithCompletionHandler:
    (void (^)(VZMacOSRestoreImage *, NSError *))completionHandler
{
    if (completionHandler == NULL)
        SIM_RAISE(@"+[VZMacOSRestoreImage fetchLatestSupportedWithCompletionHandler:]: nil "
                   "handler");
    image_start(nil, completionHandler);
}
@end

/* ---- platform and boot loader ---- */

@implementation VZMacPlatformConfiguration
@synthesize hardwareModel = _hardwareModel;
@synthesize machineIdentifier = _machineIdentifier;
@synthesize auxiliaryStorage = _auxiliaryStorage;

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _machineIdentifier = [[VZMacMachineIdentifier alloc] init];
    return self;
}

- (NSString *)sim_invalidReason
{
    if (_hardwareModel == nil) return @"The hardware model is not set.";
    if (![_hardwareModel isSupported]) return @"The hardware model is not supported on this host.";
    if (_auxiliaryStorage == nil) return @"The auxiliary storage is not set.";
    return nil;
}

- (void)dealloc
{
    [_hardwareModel release];
    [_machineIdentifier release];
    [_auxiliaryStorage release];
    [super dealloc];
}
@end

@implementation VZMacOSBootLoader
- (instancetype)init { return [super init]; }
@end

/* ---- Mac graphics, keyboard and trackpad ---- */

@implementation VZMacGraphicsDisplayConfiguration
@synthesize widthInPixels = _widthInPixels;
@synthesize heightInPixels = _heightInPixels;
@synthesize pixelsPerInch = _pixelsPerInch;

- (instancetype)init
{
    SIM_RAISE(@"-[VZMacGraphicsDisplayConfiguration init] is unavailable");
    return nil;
}

- (instancetype)initWithWidthInPixels:(NSInteger)widthInPixels
                       heightInPixels:(NSInteger)heightInPixels
                        pixelsPerInch:(NSInteger)pixelsPerInch
{
    if ((self = [super init]) == nil) return nil;
    _widthInPixels = widthInPixels;
    _heightInPixels = heightInPixels;
    _pixelsPerInch = pixelsPerInch;
    return self;
}
@end

@implementation VZMacGraphicsDeviceConfiguration
@synthesize displays = _displays;

- (instancetype)init
{
    if ((self = [super init]) == nil) return nil;
    _displays = [[NSArray alloc] init];
    return self;
}

- (NSString *)sim_invalidReason
{
    for (VZMacGraphicsDisplayConfiguration *display in _displays)
        if ([display widthInPixels] <= 0 || [display heightInPixels] <= 0
            || [display pixelsPerInch] <= 0)
            return @"A display's size or pixel density is invalid.";
    return nil;
}

- (void)dealloc
{
    [_displays release];
    [super dealloc];
}
@end

@implementation VZMacKeyboardConfiguration
- (instancetype)init { return [super init]; }
@end

@implementation VZMacTrackpadConfiguration
- (instancetype)init { return [super init]; }
@end
