// SPDX-License-Identifier: MIT
//
// The Vulkan instance and device: which physical device, one compute queue, the memory types for
// storage buffers and staging, the optional extensions (VK_EXT_memory_budget, VK_KHR_push_descriptor,
// VK_NV_cooperative_matrix with the features its GEMM needs), and the mapping of VkResult to
// m3_status.
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "encoder/vulkan/vk.h"

static const char *vk_result_name(VkResult r)
{
    switch (r) {
    case VK_SUCCESS: return "VK_SUCCESS";
    case VK_NOT_READY: return "VK_NOT_READY";
    case VK_TIMEOUT: return "VK_TIMEOUT";
    case VK_INCOMPLETE: return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
    case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
    case VK_ERROR_FRAGMENTED_POOL: return "VK_ERROR_FRAGMENTED_POOL";
    case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
    default: return "VkResult";
    }
}

m3_status m3_vk_error(m3_error *err, VkResult r, const char *what)
{
    m3_status st = (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
                       ? M3_STATUS_NOMEM
                       : M3_STATUS_DEVICE;
    const char *hint = r == VK_ERROR_DEVICE_LOST ? " (the GPU was reset or crashed; use --backend cpu)"
                       : r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? " (out of GPU memory)"
                                                            : "";
    return m3_error_set(err, st, (int)r, "vulkan: %s failed: %s (%d)%s", what, vk_result_name(r),
                        (int)r, hint);
}

bool m3_vk_is_device_oom(const m3_error *err)
{
    return err && err->status == M3_STATUS_NOMEM && err->code == (int)VK_ERROR_OUT_OF_DEVICE_MEMORY;
}

static bool has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0)
            return true;
    return false;
}

static int type_rank(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 4;
    default: return 3;
    }
}

static int compute_family(VkPhysicalDevice pd)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32)
        n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    int best = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
            continue;
        // A compute-only family first (async compute on discrete GPUs), else any with compute.
        if (!(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))
            return (int)i;
        if (best < 0)
            best = (int)i;
    }
    return best;
}

static int find_memory_type(const VkPhysicalDeviceMemoryProperties *mem, VkMemoryPropertyFlags want,
                            VkMemoryPropertyFlags avoid)
{
    for (uint32_t i = 0; i < mem->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mem->memoryTypes[i].propertyFlags;
        if ((f & want) == want && !(f & avoid))
            return (int)i;
    }
    return -1;
}

// The device M3_VULKAN_DEVICE names (an index, or a substring of the name), else the best rank.
// gpu_only: never a CPU device.
static m3_status choose_device(VkPhysicalDevice *pds, uint32_t n, bool gpu_only, uint32_t *out,
                               m3_error *err)
{
    const char *want = getenv("M3_VULKAN_DEVICE");
    if (gpu_only) {
        bool any = false;
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pds[i], &p);
            any = any || p.deviceType != VK_PHYSICAL_DEVICE_TYPE_CPU;
        }
        if (!any)
            return m3_error_set(err, M3_STATUS_DEVICE, 0,
                                "vulkan: no GPU (only CPU Vulkan devices, which the CPU backend "
                                "outruns)");
    }
    if (want && *want) {
        char *end;
        unsigned long idx = strtoul(want, &end, 10);
        if (*end == '\0') {
            if (idx >= n)
                return m3_error_set(err, M3_STATUS_DEVICE, 0,
                                    "vulkan: M3_VULKAN_DEVICE=%s but there are %u devices", want, n);
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pds[idx], &p);
            if (gpu_only && p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU)
                return m3_error_set(err, M3_STATUS_DEVICE, 0,
                                    "vulkan: M3_VULKAN_DEVICE=%s is a CPU device", want);
            *out = (uint32_t)idx;
            return M3_STATUS_OK;
        }
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            vkGetPhysicalDeviceProperties(pds[i], &p);
            if (gpu_only && p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU)
                continue;
            if (strstr(p.deviceName, want)) {
                *out = i;
                return M3_STATUS_OK;
            }
        }
        return m3_error_set(err, M3_STATUS_DEVICE, 0,
                            "vulkan: no device name contains \"%s\" (M3_VULKAN_DEVICE)", want);
    }
    int best = -1, best_rank = 99;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(pds[i], &p);
        if (compute_family(pds[i]) < 0 || p.apiVersion < VK_API_VERSION_1_1 ||
            (gpu_only && p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU))
            continue;
        int r = type_rank(p.deviceType);
        if (r < best_rank) {
            best_rank = r;
            best = (int)i;
        }
    }
    if (best < 0)
        return m3_error_set(err, M3_STATUS_DEVICE, 0,
                            "vulkan: none of the %u devices has a Vulkan 1.1 compute queue", n);
    *out = (uint32_t)best;
    return M3_STATUS_OK;
}

static void cache_load(m3_vk_device *d)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char dir[900];
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s/m3search", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache/m3search", home);
    else
        dir[0] = '\0';
    void *data = NULL;
    size_t size = 0;
    if (dir[0]) {
        snprintf(d->cache_path, sizeof d->cache_path, "%s/vulkan-%04x-%04x.cache", dir,
                 d->props.vendorID, d->props.deviceID);
        FILE *f = fopen(d->cache_path, "rb");
        if (f) {
            if (fseek(f, 0, SEEK_END) == 0) {
                long len = ftell(f);
                if (len > 0 && len < (64l << 20) && fseek(f, 0, SEEK_SET) == 0) {
                    data = malloc((size_t)len);
                    if (data && fread(data, 1, (size_t)len, f) == (size_t)len)
                        size = (size_t)len;
                }
            }
            fclose(f);
        }
    }
    // The driver checks the header (vendor, device, cache UUID) and ignores a foreign cache.
    VkPipelineCacheCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
        .initialDataSize = size,
        .pInitialData = size ? data : NULL,
    };
    if (vkCreatePipelineCache(d->dev, &ci, NULL, &d->cache) != VK_SUCCESS) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        if (vkCreatePipelineCache(d->dev, &ci, NULL, &d->cache) != VK_SUCCESS)
            d->cache = VK_NULL_HANDLE;
    }
    free(data);
}

// What the NV cooperative-matrix GEMM needs from this device (m3_vk_coopmat_choose decides).
// Structures of extensions the device lacks are never chained.
static void coopmat_caps(m3_vk_device *d, const VkExtensionProperties *exts, uint32_t next,
                         VkCooperativeMatrixPropertiesNV **props_out, m3_vk_coopmat_caps *caps)
{
    *props_out = NULL;
    *caps = (m3_vk_coopmat_caps){0};
#ifdef M3_VK_GLSLC_COOPMAT_NV
    caps->compiled = true;
#endif
    caps->extension = has_extension(exts, next, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    caps->max_shared = d->props.limits.maxComputeSharedMemorySize;
    caps->max_invocations = d->props.limits.maxComputeWorkGroupInvocations;

    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceCooperativeMatrixPropertiesNV cmp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_PROPERTIES_NV};
    if (caps->extension)
        sg.pNext = &cmp;
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &sg};
    vkGetPhysicalDeviceProperties2(d->phys, &p2);
    caps->subgroup_size = sg.subgroupSize;
    caps->subgroup_basic = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                           (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT);
    caps->compute_stage = (cmp.cooperativeMatrixSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) != 0;
    if (!caps->extension)
        return;

    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
    VkPhysicalDeviceShaderFloat16Int8FeaturesKHR f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR};
    VkPhysicalDeviceVulkanMemoryModelFeaturesKHR vmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES_KHR};
    void *chain = &cmf;
    if (has_extension(exts, next, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME)) {
        f16.pNext = chain;
        chain = &f16;
    }
    if (has_extension(exts, next, VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME)) {
        vmm.pNext = chain;
        chain = &vmm;
    }
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                    .pNext = chain};
    vkGetPhysicalDeviceFeatures2(d->phys, &f2);
    caps->feature = cmf.cooperativeMatrix;
    caps->float16 = f16.shaderFloat16;
    caps->memory_model = vmm.vulkanMemoryModel;

    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get =
        (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)vkGetInstanceProcAddr(
            d->instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
    uint32_t n = 0;
    if (!get || get(d->phys, &n, NULL) != VK_SUCCESS || n == 0)
        return;
    VkCooperativeMatrixPropertiesNV *props = calloc(n, sizeof *props);
    if (!props)
        return;
    for (uint32_t i = 0; i < n; i++)
        props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
    VkResult r = get(d->phys, &n, props);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(props);
        return;
    }
    caps->props = props;
    caps->n_props = n;
    *props_out = props;
}

m3_status m3_vk_device_open(m3_vk_device **out, unsigned flags, m3_error *err)
{
    *out = NULL;
    m3_vk_device *d = calloc(1, sizeof *d);
    if (!d)
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan: out of memory");
    m3_status st;
    VkResult r;

    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "m3search",
        .apiVersion = VK_API_VERSION_1_1,
    };
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                                .pApplicationInfo = &app};
    r = vkCreateInstance(&ici, NULL, &d->instance);
    if (r != VK_SUCCESS) {
        st = m3_error_set(err, M3_STATUS_DEVICE, (int)r,
                          "vulkan: no Vulkan driver (vkCreateInstance: %s); install one, e.g. "
                          "mesa-vulkan-drivers, or use --backend cpu",
                          vk_result_name(r));
        goto fail;
    }
    uint32_t n = 0;
    r = vkEnumeratePhysicalDevices(d->instance, &n, NULL);
    if (r != VK_SUCCESS || n == 0) {
        st = m3_error_set(err, M3_STATUS_DEVICE, (int)r, "vulkan: no Vulkan device found");
        goto fail;
    }
    VkPhysicalDevice pds[16];
    if (n > 16)
        n = 16;
    r = vkEnumeratePhysicalDevices(d->instance, &n, pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        st = m3_vk_error(err, r, "vkEnumeratePhysicalDevices");
        goto fail;
    }
    uint32_t pick = 0;
    if ((st = choose_device(pds, n, (flags & M3_VK_GPU_ONLY) != 0, &pick, err)) != M3_STATUS_OK)
        goto fail;
    d->phys = pds[pick];
    vkGetPhysicalDeviceProperties(d->phys, &d->props);
    vkGetPhysicalDeviceMemoryProperties(d->phys, &d->mem);
    d->max_range = d->props.limits.maxStorageBufferRange;
    int fam = compute_family(d->phys);
    if (fam < 0) {
        st = m3_error_set(err, M3_STATUS_DEVICE, 0, "vulkan: %s has no compute queue",
                          d->props.deviceName);
        goto fail;
    }
    d->queue_family = (uint32_t)fam;

    int dt = find_memory_type(&d->mem, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    int ht = find_memory_type(&d->mem,
                              VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                  VK_MEMORY_PROPERTY_HOST_CACHED_BIT, 0);
    if (ht < 0)
        ht = find_memory_type(&d->mem,
                              VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT, 0);
    if (dt < 0)
        dt = ht;
    if (ht < 0) {
        st = m3_error_set(err, M3_STATUS_DEVICE, 0, "vulkan: %s has no host-visible memory",
                          d->props.deviceName);
        goto fail;
    }
    d->device_type = (uint32_t)dt;
    d->host_type = (uint32_t)ht;

    uint32_t next = 0;
    vkEnumerateDeviceExtensionProperties(d->phys, NULL, &next, NULL);
    VkExtensionProperties *exts = calloc(next ? next : 1, sizeof *exts);
    if (!exts) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "vulkan: out of memory");
        goto fail;
    }
    vkEnumerateDeviceExtensionProperties(d->phys, NULL, &next, exts);
    const char *enable[8];
    uint32_t n_enable = 0;
    if (has_extension(exts, next, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME)) {
        enable[n_enable++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
        d->has_budget = true;
    }
    const char *desc = getenv("M3_VULKAN_DESCRIPTORS");
    if (has_extension(exts, next, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) &&
        !(desc && strcmp(desc, "sets") == 0)) {
        enable[n_enable++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
        d->use_push = true;
    }

    // The cooperative-matrix GEMM: its extension and features are enabled only when it is used.
    VkCooperativeMatrixPropertiesNV *coop_props;
    m3_vk_coopmat_caps caps;
    coopmat_caps(d, exts, next, &coop_props, &caps);
    d->subgroup_size = caps.subgroup_size;
    const char *why;
    const char *coop_env = getenv("M3_VULKAN_COOPMAT");
    if (coop_env && strcmp(coop_env, "0") == 0)
        why = "turned off (M3_VULKAN_COOPMAT=0)";
    else
        m3_vk_coopmat_choose(&caps, &d->coopmat, &why);
    snprintf(d->coopmat_why, sizeof d->coopmat_why, "%s", why);
    free(coop_props);
    free(exts);
    VkPhysicalDeviceCooperativeMatrixFeaturesNV cmf = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV,
        .cooperativeMatrix = VK_TRUE};
    VkPhysicalDeviceShaderFloat16Int8FeaturesKHR f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES_KHR,
        .pNext = &cmf,
        .shaderFloat16 = VK_TRUE};
    VkPhysicalDeviceVulkanMemoryModelFeaturesKHR vmm = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES_KHR,
        .pNext = &f16,
        .vulkanMemoryModel = VK_TRUE};
    if (d->coopmat.m) {
        enable[n_enable++] = VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
        enable[n_enable++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
        enable[n_enable++] = VK_KHR_VULKAN_MEMORY_MODEL_EXTENSION_NAME;
    }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = d->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_enable,
        .ppEnabledExtensionNames = enable,
        .pNext = d->coopmat.m ? &vmm : NULL,
    };
    r = vkCreateDevice(d->phys, &dci, NULL, &d->dev);
    if (r != VK_SUCCESS) {
        st = m3_vk_error(err, r, "vkCreateDevice");
        goto fail;
    }
    vkGetDeviceQueue(d->dev, d->queue_family, 0, &d->queue);
    if (d->use_push) {
        d->push_descriptor_set =
            (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr(d->dev, "vkCmdPushDescriptorSetKHR");
        d->use_push = d->push_descriptor_set != NULL;
    }
    cache_load(d);
    m3_log(M3_LOG_INFO,
           "vulkan: using %s (%u of %u devices), storage range %llu MiB%s, %s, cooperative "
           "matrix %s%s",
           d->props.deviceName, pick, n, (unsigned long long)(d->max_range >> 20),
           d->has_budget ? ", memory budget" : "",
           d->use_push ? "push descriptors" : "descriptor sets", d->coopmat.m ? "NV" : "no: ",
           d->coopmat.m ? "" : d->coopmat_why);
    *out = d;
    return M3_STATUS_OK;

fail:
    m3_vk_device_close(d);
    return st;
}

void m3_vk_device_budget(const m3_vk_device *d, uint64_t *budget, uint64_t *usage)
{
    *budget = *usage = 0;
    if (!d->has_budget)
        return;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT b = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 p = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &b};
    vkGetPhysicalDeviceMemoryProperties2(d->phys, &p);
    uint32_t heap = d->mem.memoryTypes[d->device_type].heapIndex;
    *budget = b.heapBudget[heap];
    *usage = b.heapUsage[heap];
}

void m3_vk_device_close(m3_vk_device *d)
{
    if (!d)
        return;
    if (d->dev) {
        vkDeviceWaitIdle(d->dev);
        m3_vk_pipeline_cache_save(d);
        if (d->cache)
            vkDestroyPipelineCache(d->dev, d->cache, NULL);
        vkDestroyDevice(d->dev, NULL);
    }
    if (d->instance)
        vkDestroyInstance(d->instance, NULL);
    free(d);
}
