/* Fake boot loaders: VZLinuxBootLoader, VZEFIBootLoader, VZEFIVariableStore. */
#include <sys/stat.h>
#include <unistd.h>
#include "sim_vz.h"

/* VZ raises on every URL that is not a file URL (Vz::validate_is_file_url). */
static void require_file_url(NSURL *url, NSString *what)
{
    if (url == nil || ![url isFileURL])
        SIM_RAISE(@"The URL %@ is not a file URL (%@).", url, what);
}

@implementation VZBootLoader
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }
@end

@implementation VZLinuxBootLoader
@synthesize kernelURL = _kernelURL;
@synthesize commandLine = _commandLine;
@synthesize initialRamdiskURL = _initialRamdiskURL;

- (instancetype)initWithKernelURL:(NSURL *)kernelURL
{
    require_file_url(kernelURL, @"kernelURL");
    if ((self = [super init]) == nil) return nil;
    _kernelURL = [kernelURL copy];
    _commandLine = @"";
    return self;
}

- (void)setKernelURL:(NSURL *)kernelURL
{
    require_file_url(kernelURL, @"kernelURL");
    NSURL *old = _kernelURL;
    _kernelURL = [kernelURL copy];
    [old release];
}

- (void)setInitialRamdiskURL:(NSURL *)url
{
    if (url != nil) require_file_url(url, @"initialRamdiskURL");
    NSURL *old = _initialRamdiskURL;
    _initialRamdiskURL = [url copy];
    [old release];
}

- (NSString *)sim_invalidReason
{
    /* VZ checks that the kernel and ramdisk can be read when validating. */
    if (access([[_kernelURL path] fileSystemRepresentation], R_OK) != 0)
        return [NSString stringWithFormat:@"The kernel at %@ cannot be read.", [_kernelURL path]];
    if (_initialRamdiskURL != nil
        && access([[_initialRamdiskURL path] fileSystemRepresentation], R_OK) != 0)
        return @"The initial ramdisk cannot be read.";
    return nil;
}

- (void)dealloc
{
    [_kernelURL release];
    [_commandLine release];
    [_initialRamdiskURL release];
    [super dealloc];
}
@end

/* A store file starts with this signature; the fake VM refuses to start without it. */
static const char store_magic[8] = "SIMNVRAM";
#define STORE_SIZE (128 * 1024)

@implementation VZEFIVariableStore
@synthesize URL = _URL;

- (instancetype)initWithURL:(NSURL *)URL
{
    require_file_url(URL, @"VZEFIVariableStore URL");
    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    return self;
}

- (instancetype)initCreatingVariableStoreAtURL:(NSURL *)URL
                                       options:(NSUInteger)options
                                         error:(NSError **)error
{
    require_file_url(URL, @"VZEFIVariableStore URL");
    const char *path = [[URL path] fileSystemRepresentation];
    struct stat st;
    if (stat(path, &st) == 0 && !(options & 1)) {
        if (error) *error = [NSError errorWithDomain:NSCocoaErrorDomain
                                                code:516 /* NSFileWriteFileExistsError */
                                            userInfo:@{ NSLocalizedDescriptionKey :
                                                            @"The file already exists." }];
        [self release];
        return nil;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        if (error) *error = [NSError errorWithDomain:NSPOSIXErrorDomain code:errno userInfo:nil];
        [self release];
        return nil;
    }
    char block[STORE_SIZE] = { 0 };
    memcpy(block, store_magic, sizeof store_magic);
    fwrite(block, 1, sizeof block, f);
    fclose(f);
    return [self initWithURL:URL];
}

- (BOOL)sim_isUsable
{
    char head[sizeof store_magic];
    FILE *f = fopen([[_URL path] fileSystemRepresentation], "rb");
    if (f == NULL) return NO;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == sizeof head && memcmp(head, store_magic, sizeof head) == 0;
}

- (void)dealloc
{
    [_URL release];
    [super dealloc];
}
@end

@implementation VZEFIBootLoader
@synthesize variableStore = _variableStore;

- (instancetype)init { return [super init]; }

- (NSString *)sim_invalidReason
{
    if (_variableStore == nil) return @"The EFI boot loader has no variable store.";
    return nil;
}

- (void)dealloc
{
    [_variableStore release];
    [super dealloc];
}
@end
