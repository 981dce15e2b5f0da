/*
 * Fake directory sharing: VZSharedDirectory, VZSingleDirectoryShare,
 * VZMultipleDirectoryShare and VZVirtioFileSystemDeviceConfiguration (macOS 12).
 *
 * Where VZ raises (documented in the headers), the fake raises:
 * - a non-file URL for a shared directory;
 * - -[VZMultipleDirectoryShare initWithDirectories:] with a key that is not a valid
 *   name ("The keys must be valid names or an exception will be raised.");
 * - -[VZVirtioFileSystemDeviceConfiguration initWithTag:] / -setTag: with an
 *   invalid tag ("The tag must be valid").
 * The validators implement the rules the headers state: a tag is "non-empty and
 * less than 36 bytes when encoded in UTF-8"; a name "must not be empty, have
 * characters unsafe for file systems, be longer than NAME_MAX, or other
 * restrictions".
 *
 * VZLinuxRosettaDirectoryShare (arm64 only on a Mac) is in vz_rosetta.m.
 */
#include <limits.h>
#include "sim_vz.h"

/* VZ raises on every URL that is not a file URL (Vz::validate_is_file_url). */
static void require_file_url(NSURL *url, NSString *what)
{
    if (url == nil || ![url isFileURL])
        SIM_RAISE(@"The URL %@ is not a file URL (%@).", url, what);
}

static BOOL has_nul(NSString *s)
{
    NSUInteger n = [s length];
    for (NSUInteger i = 0; i < n; i++)
        if ([s characterAtIndex:i] == 0) return YES;
    return NO;
}

static BOOL fail(NSError **error, NSString *reason)
{
    if (error != NULL) *error = sim_vz_error(VZErrorInvalidVirtualMachineConfiguration, reason);
    return NO;
}

/* ---- tags ---- */

#define TAG_LIMIT 36 /* bytes of UTF-8; a valid tag is shorter */

static NSString *tag_problem(NSString *tag)
{
    if (tag == nil || ![tag isKindOfClass:[NSString class]]) return @"The tag is not a string.";
    NSUInteger bytes = [tag lengthOfBytesUsingEncoding:NSUTF8StringEncoding];
    if (bytes == 0) return @"The tag is empty.";
    if (bytes >= TAG_LIMIT)
        return [NSString stringWithFormat:@"The tag \"%@\" is %lu bytes long in UTF-8; it must "
                                           "be less than %d bytes.",
                                          tag, (unsigned long)bytes, TAG_LIMIT];
    return nil;
}

/* ---- names ---- */

static NSString *name_problem(NSString *name)
{
    if (name == nil || ![name isKindOfClass:[NSString class]]) return @"The name is not a string.";
    NSUInteger bytes = [name lengthOfBytesUsingEncoding:NSUTF8StringEncoding];
    if (bytes == 0) return @"The name is empty.";
    if (bytes > NAME_MAX)
        return [NSString stringWithFormat:@"The name is %lu bytes long; the limit is %d.",
                                          (unsigned long)bytes, NAME_MAX];
    if (has_nul(name) || [name rangeOfString:@"/"].location != NSNotFound)
        return [NSString stringWithFormat:@"The name \"%@\" contains characters that are unsafe "
                                           "for file systems.", name];
    if ([name isEqualToString:@"."] || [name isEqualToString:@".."])
        return [NSString stringWithFormat:@"The name \"%@\" is reserved.", name];
    return nil;
}

@implementation VZSharedDirectory
@synthesize URL = _URL;
@synthesize readOnly = _readOnly;

- (instancetype)initWithURL:(NSURL *)URL readOnly:(BOOL)readOnly
{
    require_file_url(URL, @"VZSharedDirectory URL");
    if ((self = [super init]) == nil) return nil;
    _URL = [URL copy];
    _readOnly = readOnly;
    return self;
}

- (void)dealloc
{
    [_URL release];
    [super dealloc];
}
@end

@implementation VZDirectoryShare
@end

@implementation VZSingleDirectoryShare
@synthesize directory = _directory;

- (instancetype)initWithDirectory:(VZSharedDirectory *)directory
{
    if (directory == nil || ![directory isKindOfClass:[VZSharedDirectory class]])
        SIM_RAISE(@"-[VZSingleDirectoryShare initWithDirectory:] needs a VZSharedDirectory.");
    if ((self = [super init]) == nil) return nil;
    _directory = [directory retain];
    return self;
}

- (void)dealloc
{
    [_directory release];
    [super dealloc];
}
@end

@implementation VZMultipleDirectoryShare
@synthesize directories = _directories;

- (instancetype)init
{
    return [self initWithDirectories:[NSDictionary dictionary]];
}

- (instancetype)initWithDirectories:(NSDictionary *)directories
{
    if (directories == nil) SIM_RAISE(@"The directories dictionary is nil.");
    for (id name in directories) {
        NSString *problem = name_problem(name);
        if (problem != nil) SIM_RAISE(@"Invalid directory name: %@", problem);
        if (![[directories objectForKey:name] isKindOfClass:[VZSharedDirectory class]])
            SIM_RAISE(@"The directory named \"%@\" is not a VZSharedDirectory.", name);
    }
    if ((self = [super init]) == nil) return nil;
    _directories = [directories copy];
    return self;
}

+ (BOOL)validateName:(NSString *)name error:(NSError **)error
{
    NSString *problem = name_problem(name);
    return problem == nil ? YES : fail(error, problem);
}

+ (NSString *)canonicalizedNameFromName:(NSString *)name
{
    if (name == nil) return nil;
    NSMutableString *out = [NSMutableString string];
    NSUInteger n = [name length];
    for (NSUInteger i = 0; i < n; i++) {
        unichar c = [name characterAtIndex:i];
        if (c == 0 || c == '/')
            [out appendString:@"_"];
        else
            [out appendString:[NSString stringWithCharacters:&c length:1]];
    }
    /* Trim to NAME_MAX bytes of UTF-8 without splitting a character. */
    while ([out lengthOfBytesUsingEncoding:NSUTF8StringEncoding] > NAME_MAX) {
        NSRange last = [out rangeOfComposedCharacterSequenceAtIndex:[out length] - 1];
        [out deleteCharactersInRange:last];
    }
    if (name_problem(out) != nil) return nil;
    return [[out copy] autorelease];
}

- (void)dealloc
{
    [_directories release];
    [super dealloc];
}
@end

@implementation VZDirectorySharingDeviceConfiguration
- (id)copyWithZone:(NSZone *)zone { return [self retain]; }
@end

@implementation VZVirtioFileSystemDeviceConfiguration
@synthesize tag = _tag;
@synthesize share = _share;

+ (BOOL)validateTag:(NSString *)tag error:(NSError **)error
{
    NSString *problem = tag_problem(tag);
    return problem == nil ? YES : fail(error, problem);
}

/* The tag macOS guests mount automatically (macOS 13). */
+ (NSString *)macOSGuestAutomountTag { return @"com.apple.virtio-fs.automount"; }

- (instancetype)initWithTag:(NSString *)tag
{
    NSString *problem = tag_problem(tag);
    if (problem != nil) SIM_RAISE(@"Invalid tag: %@", problem);
    if ((self = [super init]) == nil) return nil;
    _tag = [tag copy];
    return self;
}

- (void)setTag:(NSString *)tag
{
    NSString *problem = tag_problem(tag);
    if (problem != nil) SIM_RAISE(@"Invalid tag: %@", problem);
    NSString *old = _tag;
    _tag = [tag copy];
    [old release];
}

- (void)setShare:(VZDirectoryShare *)share
{
    if (share != nil && ![share isKindOfClass:[VZDirectoryShare class]])
        SIM_RAISE(@"The share is not a VZDirectoryShare.");
    [share retain];
    [_share release];
    _share = share;
}

- (id)copyWithZone:(NSZone *)zone
{
    VZVirtioFileSystemDeviceConfiguration *copy = [[[self class] allocWithZone:zone] initWithTag:_tag];
    copy.share = _share;
    return copy;
}

/* VZ documents no validation rule of its own for the device; unique tags are checked
 * by the configuration. */
- (NSString *)sim_invalidReason { return nil; }

- (void)dealloc
{
    [_tag release];
    [_share release];
    [super dealloc];
}
@end
