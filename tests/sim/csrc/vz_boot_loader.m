/*
 * Fake boot loaders: VZLinuxBootLoader, VZEFIBootLoader, VZEFIVariableStore.
 *
 * VZ reads the Linux kernel and the initial RAM disk when the virtual machine starts,
 * not when the configuration is validated: Code-Hex/vz's tests (issues_test.go,
 * newTestConfig) delete the kernel file right after building the boot loader and
 * still expect -validateWithError: to succeed, on their macOS CI runners; and a
 * kernel that cannot be opened is reported to the completion handler of
 * -startWithCompletionHandler: (evansm7/vftool#24, macOS 11). So validation here does
 * not look at the files, and -sim_startError (called by the fake VM when it starts)
 * does. See tests/sim/FIDELITY.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "sim_vz.h"

/* VZ raises on every URL that is not a file URL (Vz::validate_is_file_url). */
static void require_file_url(NSURL *url, NSString *what)
{
    if (url == nil || ![url isFileURL])
        SIM_RAISE(@"The URL %@ is not a file URL (%@).", url, what);
}

/* Why the file at `url` cannot be read, as an NSPOSIXErrorDomain error, or nil. The
 * fake opens without blocking (a FIFO would block VZ's open for ever; the crate
 * refuses FIFOs before VZ sees them, and a test must not hang here). */
static NSError *unreadable(NSURL *url)
{
    int fd = open([[url path] fileSystemRepresentation], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    int err = 0;
    if (fd < 0) {
        err = errno;
    } else {
        struct stat st;
        if (fstat(fd, &st) != 0)
            err = errno;
        else if (S_ISDIR(st.st_mode))
            err = EISDIR;
        close(fd);
    }
    if (err == 0) return nil;
    NSString *text = [NSString stringWithUTF8String:strerror(err)];
    return [NSError errorWithDomain:NSPOSIXErrorDomain
                               code:err
                           userInfo:@{ NSLocalizedDescriptionKey : text }];
}

/* VZErrorDomain code 2, "The boot loader is invalid.", over a code-2 error that names
 * the file that failed, over the POSIX error: the chain evansm7/vftool#24 shows for a
 * kernel that does not exist at start. */
static NSError *boot_loader_error(NSString *what, NSError *posix)
{
    NSString *failure = @"Invalid virtual machine configuration.";
    NSError *inner = [NSError errorWithDomain:VZErrorDomain
                                         code:VZErrorInvalidVirtualMachineConfiguration
                                     userInfo:@{
                                         @"NSLocalizedFailure" : failure,
                                         NSLocalizedDescriptionKey : what,
                                         NSLocalizedFailureReasonErrorKey : what,
                                         NSUnderlyingErrorKey : posix,
                                     }];
    NSString *reason = @"The boot loader is invalid.";
    return [NSError errorWithDomain:VZErrorDomain
                               code:VZErrorInvalidVirtualMachineConfiguration
                           userInfo:@{
                               @"NSLocalizedFailure" : failure,
                               NSLocalizedDescriptionKey : reason,
                               NSLocalizedFailureReasonErrorKey : reason,
                               NSUnderlyingErrorKey : inner,
                           }];
}

@implementation VZBootLoader
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }

/* Nothing to read at start unless a subclass says otherwise. */
- (NSError *)sim_startError { return nil; }
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

/* Read at start (see the top of this file). The kernel's message is the one VZ gave in
 * evansm7/vftool#24; the RAM disk's is the fake's own wording (unverified). */
- (NSError *)sim_startError
{
    NSError *posix = unreadable(_kernelURL);
    if (posix != nil) return boot_loader_error(@"Failed to open the kernel file.", posix);
    if (_initialRamdiskURL != nil && (posix = unreadable(_initialRamdiskURL)) != nil)
        return boot_loader_error(@"Failed to open the initial RAM disk file.", posix);
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
