// The only C++ in fmrecon: DCMTK (Debian libdcmtk-dev) has a C++ API only. Kept to reading and
// writing single instances behind the C API of dicom.h; no exception or C++ type crosses it.
#include "io/dicom.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>

namespace {

// DICOM field keywords of fmr_subject_field, in enum order.
const DcmTagKey subject_tags[FMR_SUBJ_COUNT] = {
    DCM_PatientName,         DCM_PatientID,        DCM_PatientBirthDate,   DCM_PatientSex,
    DCM_StudyDate,           DCM_StudyTime,        DCM_StudyID,            DCM_AccessionNumber,
    DCM_StudyDescription,    DCM_ReferringPhysicianName, DCM_StudyInstanceUID, DCM_FrameOfReferenceUID,
    DCM_Manufacturer,        DCM_ManufacturerModelName, DCM_InstitutionName, DCM_MagneticFieldStrength,
    DCM_ProtocolName,
};

void get_str(DcmDataset *d, const DcmTagKey &k, char *buf, size_t n)
{
    OFString s;
    buf[0] = '\0';
    if (d->findAndGetOFStringArray(k, s).good()) std::snprintf(buf, n, "%s", s.c_str());
}

int get_doubles(DcmDataset *d, const DcmTagKey &k, double *v, int n)
{
    for (int i = 0; i < n; i++) {
        Float64 x;
        if (d->findAndGetFloat64(k, x, (unsigned long)i).bad() || !std::isfinite(x)) return 0;
        v[i] = x;
    }
    return 1;
}

std::string fmt_ds(double v)
{
    // DS holds at most 16 characters
    char b[32];
    for (int p = 10; p > 0; p--) {
        std::snprintf(b, sizeof b, "%.*g", p, v);
        if (std::strlen(b) <= 16) break;
    }
    return b;
}

std::string fmt_int(long v)
{
    char b[32];
    std::snprintf(b, sizeof b, "%ld", v);
    return b;
}

std::string fmt_ds_list(const double *v, int n)
{
    std::string s;
    for (int i = 0; i < n; i++) s += (i ? "\\" : "") + fmt_ds(v[i]);
    return s;
}

} // namespace

extern "C" void fmr_dcm_new_uid(char *buf)
{
    dcmGenerateUniqueIdentifier(buf, SITE_INSTANCE_UID_ROOT);
}

extern "C" fmr_err fmr_dcm_read(const char *path, int want_pixels, fmr_dcm_info *info)
{
    std::memset(info, 0, sizeof *info);
    DcmFileFormat ff;
    OFCondition c = ff.loadFile(path);
    if (c.bad()) return fmr_error(FMR_ERR_FORMAT, "%s: not a readable DICOM file (%s)", path, c.text());
    DcmDataset *d = ff.getDataset();
    get_str(d, DCM_SOPClassUID, info->sop_class, sizeof info->sop_class);
    get_str(d, DCM_SeriesInstanceUID, info->series_uid, sizeof info->series_uid);
    get_str(d, DCM_SeriesDescription, info->series_description, sizeof info->series_description);
    get_str(d, DCM_PatientPosition, info->patient_position, sizeof info->patient_position);
    for (int f = 0; f < FMR_SUBJ_COUNT; f++) get_str(d, subject_tags[f], info->subject[f], sizeof info->subject[f]);
    Uint16 rows = 0, cols = 0, spp = 1, bits = 0, rep = 0;
    d->findAndGetUint16(DCM_Rows, rows);
    d->findAndGetUint16(DCM_Columns, cols);
    d->findAndGetUint16(DCM_SamplesPerPixel, spp);
    d->findAndGetUint16(DCM_BitsAllocated, bits);
    d->findAndGetUint16(DCM_PixelRepresentation, rep);
    info->rows = rows, info->cols = cols;
    info->has_ipp = get_doubles(d, DCM_ImagePositionPatient, info->ipp, 3);
    info->has_iop = get_doubles(d, DCM_ImageOrientationPatient, info->iop, 6);
    info->has_spacing = get_doubles(d, DCM_PixelSpacing, info->spacing, 2);
    info->has_thickness = get_doubles(d, DCM_SliceThickness, &info->thickness, 1);
    info->has_trigger = get_doubles(d, DCM_TriggerTime, &info->trigger_ms, 1);
    if (!want_pixels) return FMR_OK;
    if (!rows || !cols || spp != 1 || (bits != 16 && bits != 8))
        return fmr_error(FMR_ERR_FORMAT, "%s: only single-sample greyscale 8/16-bit images are read (rows %u, columns %u, "
                         "samples %u, bits %u)", path, rows, cols, spp, bits);
    Sint32 nframes = 1;
    d->findAndGetSint32(DCM_NumberOfFrames, nframes);
    if (nframes > 1) return fmr_error(FMR_ERR_FORMAT, "%s: multi-frame instances are not read", path);
    E_TransferSyntax xs = d->getOriginalXfer();
    if (DcmXfer(xs).isEncapsulated())
        return fmr_error(FMR_ERR_FORMAT, "%s: compressed transfer syntax %s is not read; decompress first (dcmdjpeg)", path,
                         DcmXfer(xs).getXferName());
    double slope = 1.0, icpt = 0.0;
    get_doubles(d, DCM_RescaleSlope, &slope, 1);
    get_doubles(d, DCM_RescaleIntercept, &icpt, 1);
    const size_t n = (size_t)rows * cols;
    info->pixels = static_cast<float *>(std::malloc(n * sizeof(float)));
    if (!info->pixels) return fmr_error(FMR_ERR_NOMEM, "%s: cannot allocate pixels", path);
    unsigned long count = 0;
    if (bits == 16) {
        const Uint16 *p = nullptr;
        if (d->findAndGetUint16Array(DCM_PixelData, p, &count).bad() || !p || count < n) {
            std::free(info->pixels);
            info->pixels = nullptr;
            return fmr_error(FMR_ERR_FORMAT, "%s: pixel data missing or shorter than %u x %u", path, rows, cols);
        }
        for (size_t i = 0; i < n; i++)
            info->pixels[i] = (float)(slope * (rep ? (double)(Sint16)p[i] : (double)p[i]) + icpt);
    } else {
        const Uint8 *p = nullptr;
        if (d->findAndGetUint8Array(DCM_PixelData, p, &count).bad() || !p || count < n) {
            std::free(info->pixels);
            info->pixels = nullptr;
            return fmr_error(FMR_ERR_FORMAT, "%s: pixel data missing or shorter than %u x %u", path, rows, cols);
        }
        for (size_t i = 0; i < n; i++)
            info->pixels[i] = (float)(slope * (rep ? (double)(Sint8)p[i] : (double)p[i]) + icpt);
    }
    return FMR_OK;
}

extern "C" fmr_err fmr_dcm_write(const char *path, const fmr_dcm_out *o)
{
    DcmFileFormat ff;
    DcmDataset *d = ff.getDataset();
    OFCondition c = EC_Normal;
    auto put = [&](const DcmTagKey &k, const std::string &v) {
        if (c.good()) c = d->putAndInsertString(k, v.c_str());
    };
    auto put16 = [&](const DcmTagKey &k, Uint16 v) {
        if (c.good()) c = d->putAndInsertUint16(k, v);
    };
    put(DCM_SpecificCharacterSet, "ISO_IR 192");
    put(DCM_ImageType, "DERIVED\\PRIMARY\\OTHER");
    put(DCM_SOPClassUID, UID_MRImageStorage);
    put(DCM_SOPInstanceUID, o->sop_uid);
    put(DCM_StudyInstanceUID, o->study_uid);
    put(DCM_SeriesInstanceUID, o->series_uid);
    put(DCM_FrameOfReferenceUID, o->frame_uid);
    // Patient and study: copied from the input when it had them, otherwise present and empty.
    for (int f = 0; f < FMR_SUBJ_COUNT; f++) {
        if (f == FMR_SUBJ_STUDY_UID || f == FMR_SUBJ_FRAME_OF_REFERENCE_UID) continue;
        const char *v = o->subject[f] ? o->subject[f] : "";
        // type 3 fields are only written when known
        int type3 = f == FMR_SUBJ_STUDY_DESCRIPTION || f == FMR_SUBJ_MODEL || f == FMR_SUBJ_INSTITUTION ||
                    f == FMR_SUBJ_FIELD_STRENGTH || f == FMR_SUBJ_PROTOCOL;
        if (!type3 || *v) put(subject_tags[f], v);
    }
    put(DCM_Modality, "MR");
    put(DCM_SeriesNumber, fmt_int(o->series_number));
    put(DCM_InstanceNumber, fmt_int(o->instance_number));
    put(DCM_SeriesDescription, o->series_description);
    put(DCM_DerivationDescription, o->derivation);
    put(DCM_SoftwareVersions, o->software);
    put(DCM_ContentDate, o->content_date);
    put(DCM_ContentTime, o->content_time);
    put(DCM_PatientPosition, o->patient_position ? o->patient_position : "");
    put(DCM_PositionReferenceIndicator, "");
    put(DCM_Laterality, "");
    // MR Image module: the image is computed, so the scanning sequence is "research mode".
    put(DCM_ScanningSequence, "RM");
    put(DCM_SequenceVariant, "NONE");
    // TriggerTime is conditional on cardiac gating, which ScanOptions CG states.
    put(DCM_ScanOptions, o->gated ? "CG" : "");
    put(DCM_MRAcquisitionType, "2D");
    put(DCM_RepetitionTime, "");
    put(DCM_EchoTime, "");
    put(DCM_EchoTrainLength, "");
    if (o->gated) put(DCM_TriggerTime, fmt_ds(o->trigger_ms));
    put(DCM_CardiacNumberOfImages, fmt_int(o->cardiac_images));
    put(DCM_SliceThickness, fmt_ds(o->thickness));
    put(DCM_SpacingBetweenSlices, fmt_ds(o->spacing_between));
    put(DCM_ImagePositionPatient, fmt_ds_list(o->ipp, 3));
    put(DCM_ImageOrientationPatient, fmt_ds_list(o->iop, 6));
    put(DCM_PixelSpacing, fmt_ds_list(o->spacing, 2));
    put(DCM_SliceLocation, fmt_ds(o->slice_location));
    put16(DCM_SamplesPerPixel, 1);
    put(DCM_PhotometricInterpretation, "MONOCHROME2");
    put16(DCM_Rows, (Uint16)o->rows);
    put16(DCM_Columns, (Uint16)o->cols);
    put16(DCM_BitsAllocated, 16);
    put16(DCM_BitsStored, 16);
    put16(DCM_HighBit, 15);
    put16(DCM_PixelRepresentation, 0);
    put(DCM_RescaleIntercept, fmt_ds(o->intercept));
    put(DCM_RescaleSlope, fmt_ds(o->slope));
    put(DCM_RescaleType, "US");
    put(DCM_WindowCenter, fmt_ds(o->window_center));
    put(DCM_WindowWidth, fmt_ds(o->window_width));
    put(DCM_LossyImageCompression, "00");
    if (c.good()) c = d->putAndInsertUint16Array(DCM_PixelData, o->pixels, (unsigned long)(o->rows * o->cols));
    if (c.bad()) return fmr_error(FMR_ERR_INTERNAL, "%s: cannot build the DICOM dataset (%s)", path, c.text());
    c = ff.saveFile(path, EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0, EWM_fileformat);
    if (c.bad()) return fmr_error(FMR_ERR_IO, "%s: cannot write DICOM (%s)", path, c.text());
    return FMR_OK;
}

// Enhanced MR Image Storage (PS3.3 A.36.2): one instance, all frames of one slice location,
// the per-frame values in functional groups. The images are DERIVED, so the MR groups that
// are conditional on ORIGINAL/MIXED (timing, FOV, echo, coils) are not written: fmrecon does
// not carry their values and would have to invent them.
extern "C" fmr_err fmr_dcm_write_enhanced(const char *path, const fmr_dcm_out *o)
{
    DcmFileFormat ff;
    DcmDataset *d = ff.getDataset();
    OFCondition c = EC_Normal;
    auto put = [&](DcmItem *it, const DcmTagKey &k, const std::string &v) {
        if (c.good()) c = it->putAndInsertString(k, v.c_str());
    };
    auto put16 = [&](DcmItem *it, const DcmTagKey &k, Uint16 v) {
        if (c.good()) c = it->putAndInsertUint16(k, v);
    };
    auto item = [&](DcmItem *parent, const DcmTagKey &seq) -> DcmItem * {
        DcmItem *it = nullptr;
        if (c.good()) c = parent->findOrCreateSequenceItem(seq, it, -2);
        return c.good() ? it : nullptr;
    };
    put(d, DCM_SpecificCharacterSet, "ISO_IR 192");
    const char *flavor = o->gated ? "CARDIAC_GATED" : "NONE";
    const std::string type = std::string("DERIVED\\PRIMARY\\") + flavor + "\\NONE";
    put(d, DCM_ImageType, type);
    put(d, DCM_SOPClassUID, UID_EnhancedMRImageStorage);
    put(d, DCM_SOPInstanceUID, o->sop_uid);
    put(d, DCM_StudyInstanceUID, o->study_uid);
    put(d, DCM_SeriesInstanceUID, o->series_uid);
    put(d, DCM_FrameOfReferenceUID, o->frame_uid);
    for (int f = 0; f < FMR_SUBJ_COUNT; f++) {
        if (f == FMR_SUBJ_STUDY_UID || f == FMR_SUBJ_FRAME_OF_REFERENCE_UID ||
            f == FMR_SUBJ_MANUFACTURER || f == FMR_SUBJ_MODEL)
            continue;
        const char *v = o->subject[f] ? o->subject[f] : "";
        int type3 = f == FMR_SUBJ_STUDY_DESCRIPTION || f == FMR_SUBJ_INSTITUTION ||
                    f == FMR_SUBJ_FIELD_STRENGTH || f == FMR_SUBJ_PROTOCOL;
        if (!type3 || *v) put(d, subject_tags[f], v);
    }
    // Enhanced General Equipment makes these type 1: the scanner's when the input named it,
    // otherwise the software that produced this instance; the serial number is not carried.
    const char *man = o->subject[FMR_SUBJ_MANUFACTURER], *model = o->subject[FMR_SUBJ_MODEL];
    put(d, DCM_Manufacturer, man && *man ? man : "fmrecon");
    put(d, DCM_ManufacturerModelName, model && *model ? model : "fmrecon");
    put(d, DCM_DeviceSerialNumber, "UNKNOWN");
    put(d, DCM_SoftwareVersions, o->software);
    put(d, DCM_Modality, "MR");
    put(d, DCM_SeriesNumber, fmt_int(o->series_number));
    put(d, DCM_InstanceNumber, fmt_int(o->instance_number));
    put(d, DCM_SeriesDescription, o->series_description);
    put(d, DCM_DerivationDescription, o->derivation);
    put(d, DCM_ContentDate, o->content_date);
    put(d, DCM_ContentTime, o->content_time);
    put(d, DCM_PatientPosition, o->patient_position ? o->patient_position : "");
    put(d, DCM_PositionReferenceIndicator, "");
    // Laterality is left out: the heart is not a paired body part (dciodvfy)
    // Enhanced MR Image module
    put(d, DCM_PixelPresentation, "MONOCHROME");
    put(d, DCM_VolumetricProperties, "VOLUME");
    put(d, DCM_VolumeBasedCalculationTechnique, "NONE");
    put(d, DCM_ComplexImageComponent, "MAGNITUDE");
    put(d, DCM_AcquisitionContrast, "UNKNOWN");
    put(d, DCM_ContentQualification, "RESEARCH");
    put(d, DCM_BurnedInAnnotation, "NO");
    put(d, DCM_LossyImageCompression, "00");
    put(d, DCM_PresentationLUTShape, "IDENTITY");
    // type 1 in the MR Image and Spectroscopy Instance macro; the scanner's standard is not carried
    put(d, DCM_ApplicableSafetyStandardAgency, "UNKNOWN");
    // Acquisition Context: type 2, nothing known
    if (c.good()) c = d->insertEmptyElement(DCM_AcquisitionContextSequence);
    // Image Pixel
    put16(d, DCM_SamplesPerPixel, 1);
    put(d, DCM_PhotometricInterpretation, "MONOCHROME2");
    put16(d, DCM_Rows, (Uint16)o->rows);
    put16(d, DCM_Columns, (Uint16)o->cols);
    put16(d, DCM_BitsAllocated, 16);
    put16(d, DCM_BitsStored, 16);
    put16(d, DCM_HighBit, 15);
    put16(d, DCM_PixelRepresentation, 0);
    put(d, DCM_NumberOfFrames, fmt_int((long)o->frames));
    // Multi-frame Dimension: stack, position in stack, temporal position
    char dim_uid[80];
    dcmGenerateUniqueIdentifier(dim_uid, SITE_INSTANCE_UID_ROOT);
    if (DcmItem *it = item(d, DCM_DimensionOrganizationSequence))
        put(it, DCM_DimensionOrganizationUID, dim_uid);
    const DcmTagKey dims[3] = {DCM_StackID, DCM_InStackPositionNumber, DCM_TemporalPositionIndex};
    const char *dim_labels[3] = {"Stack ID", "In-Stack Position Number", "Temporal Position Index"};
    for (int k = 0; k < 3; k++)
        if (DcmItem *it = item(d, DCM_DimensionIndexSequence)) {
            if (c.good()) c = it->putAndInsertTagKey(DCM_DimensionIndexPointer, dims[k]);
            if (c.good())
                c = it->putAndInsertTagKey(DCM_FunctionalGroupPointer, DCM_FrameContentSequence);
            put(it, DCM_DimensionOrganizationUID, dim_uid);
            put(it, DCM_DimensionDescriptionLabel, dim_labels[k]);
        }
    // Shared functional groups
    if (DcmItem *sh = item(d, DCM_SharedFunctionalGroupsSequence)) {
        if (DcmItem *it = item(sh, DCM_PixelMeasuresSequence)) {
            put(it, DCM_PixelSpacing, fmt_ds_list(o->spacing, 2));
            put(it, DCM_SliceThickness, fmt_ds(o->thickness));
            put(it, DCM_SpacingBetweenSlices, fmt_ds(o->spacing_between));
        }
        if (DcmItem *it = item(sh, DCM_PlaneOrientationSequence))
            put(it, DCM_ImageOrientationPatient, fmt_ds_list(o->iop, 6));
        if (DcmItem *it = item(sh, DCM_PixelValueTransformationSequence)) {
            put(it, DCM_RescaleIntercept, fmt_ds(o->intercept));
            put(it, DCM_RescaleSlope, fmt_ds(o->slope));
            put(it, DCM_RescaleType, "US");
        }
        if (DcmItem *it = item(sh, DCM_FrameVOILUTSequence)) {
            put(it, DCM_WindowCenter, fmt_ds(o->window_center));
            put(it, DCM_WindowWidth, fmt_ds(o->window_width));
        }
        if (DcmItem *it = item(sh, DCM_MRImageFrameTypeSequence)) {
            put(it, DCM_FrameType, type);
            put(it, DCM_PixelPresentation, "MONOCHROME");
            put(it, DCM_VolumetricProperties, "VOLUME");
            put(it, DCM_VolumeBasedCalculationTechnique, "NONE");
            put(it, DCM_ComplexImageComponent, "MAGNITUDE");
            put(it, DCM_AcquisitionContrast, "UNKNOWN");
        }
        // fmrecon reconstructs cardiac cines
        if (DcmItem *it = item(sh, DCM_FrameAnatomySequence)) {
            if (DcmItem *code = item(it, DCM_AnatomicRegionSequence)) {
                put(code, DCM_CodeValue, "80891009");
                put(code, DCM_CodingSchemeDesignator, "SCT");
                put(code, DCM_CodeMeaning, "Heart");
            }
            put(it, DCM_FrameLaterality, "U");
        }
    }
    // Per-frame functional groups
    for (size_t t = 0; t < o->frames && c.good(); t++) {
        DcmItem *pf = item(d, DCM_PerFrameFunctionalGroupsSequence);
        if (!pf) break;
        if (DcmItem *it = item(pf, DCM_FrameContentSequence)) {
            put16(it, DCM_FrameAcquisitionNumber, (Uint16)(t + 1));
            put(it, DCM_StackID, "1");
            if (c.good()) c = it->putAndInsertUint32(DCM_InStackPositionNumber, 1);
            if (c.good()) c = it->putAndInsertUint32(DCM_TemporalPositionIndex, (Uint32)(t + 1));
            const Uint32 div[3] = {1, 1, (Uint32)(t + 1)};
            if (c.good()) c = it->putAndInsertUint32Array(DCM_DimensionIndexValues, div, 3);
        }
        if (DcmItem *it = item(pf, DCM_PlanePositionSequence))
            put(it, DCM_ImagePositionPatient, fmt_ds_list(o->frame_ipp + 3 * t, 3));
        if (o->gated)
            if (DcmItem *it = item(pf, DCM_CardiacSynchronizationSequence))
                if (c.good())
                    c = it->putAndInsertFloat64(DCM_NominalCardiacTriggerDelayTime,
                                                o->frame_trigger_ms[t]);
    }
    if (c.good())
        c = d->putAndInsertUint16Array(DCM_PixelData, o->pixels,
                                       (unsigned long)(o->frames * o->rows * o->cols));
    if (c.bad())
        return fmr_error(FMR_ERR_INTERNAL, "%s: cannot build the DICOM dataset (%s)", path,
                         c.text());
    c = ff.saveFile(path, EXS_LittleEndianExplicit, EET_ExplicitLength, EGL_recalcGL, EPD_noChange,
                    0, 0, EWM_fileformat);
    if (c.bad()) return fmr_error(FMR_ERR_IO, "%s: cannot write DICOM (%s)", path, c.text());
    return FMR_OK;
}
