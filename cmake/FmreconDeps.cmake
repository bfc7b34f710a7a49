# Finds fmrecon's dependencies, on Debian 12 packages or on a cluster's own builds (PETSC_DIR,
# HDF5_ROOT, MPI compiler wrappers, CMAKE_PREFIX_PATH). Each becomes an imported target fmr::<name>.
find_package(MPI REQUIRED COMPONENTS C)
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(PkgConfig REQUIRED)
find_package(LibXml2 REQUIRED)
find_package(PNG REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto) # SHA-256 of encoder checkpoints (model bundles)

# ---- FFTW3 single precision (+ threads, + MPI); Debian has fftw3f.pc but no fftw3f_mpi.pc ----
pkg_check_modules(FFTW3F IMPORTED_TARGET fftw3f)
find_path(FFTW3_INCLUDE_DIR fftw3.h HINTS ${FFTW3F_INCLUDE_DIRS} ENV FFTW_DIR PATH_SUFFIXES include)
find_library(FFTW3F_LIBRARY NAMES fftw3f HINTS ${FFTW3F_LIBRARY_DIRS} ENV FFTW_DIR PATH_SUFFIXES lib)
find_library(FFTW3F_THREADS_LIBRARY NAMES fftw3f_threads HINTS ${FFTW3F_LIBRARY_DIRS} ENV FFTW_DIR PATH_SUFFIXES lib)
find_library(FFTW3F_MPI_LIBRARY NAMES fftw3f_mpi HINTS ${FFTW3F_LIBRARY_DIRS} ENV FFTW_DIR PATH_SUFFIXES lib)
find_path(FFTW3_MPI_INCLUDE_DIR fftw3-mpi.h HINTS ${FFTW3_INCLUDE_DIR} ENV FFTW_DIR PATH_SUFFIXES include)
foreach(v FFTW3_INCLUDE_DIR FFTW3F_LIBRARY FFTW3F_THREADS_LIBRARY FFTW3F_MPI_LIBRARY FFTW3_MPI_INCLUDE_DIR)
  if(NOT ${v})
    message(FATAL_ERROR "fmrecon: FFTW3 (single precision, threads and MPI) not found (${v}). "
      "Debian: apt-get install libfftw3-dev libfftw3-mpi-dev; elsewhere set FFTW_DIR or CMAKE_PREFIX_PATH.")
  endif()
endforeach()
add_library(fmr::fftw INTERFACE IMPORTED)
target_include_directories(fmr::fftw INTERFACE ${FFTW3_INCLUDE_DIR} ${FFTW3_MPI_INCLUDE_DIR})
target_link_libraries(fmr::fftw INTERFACE ${FFTW3F_MPI_LIBRARY} ${FFTW3F_THREADS_LIBRARY} ${FFTW3F_LIBRARY})

# ---- PETSc, complex scalars (Debian's default 'petsc' alternative is the real build) ----
if(NOT PETSC_DIR AND DEFINED ENV{PETSC_DIR})
  set(PETSC_DIR "$ENV{PETSC_DIR}")
  set(PETSC_ARCH "$ENV{PETSC_ARCH}")
endif()
if(NOT PETSC_DIR AND EXISTS /usr/lib/petscdir/petsc-complex)
  set(PETSC_DIR /usr/lib/petscdir/petsc-complex)
endif()
set(PETSC_DIR "${PETSC_DIR}" CACHE PATH "PETSc installation (complex scalars)")
set(PETSC_ARCH "${PETSC_ARCH}" CACHE STRING "PETSc arch (empty for prefix installs)")
set(_petsc_pc "${PETSC_DIR}/${PETSC_ARCH}/lib/pkgconfig")
if(NOT EXISTS "${_petsc_pc}/PETSc.pc" AND NOT EXISTS "${_petsc_pc}/petsc.pc")
  set(_petsc_pc "${PETSC_DIR}/lib/pkgconfig")
endif()
set(ENV{PKG_CONFIG_PATH} "${_petsc_pc}:$ENV{PKG_CONFIG_PATH}")
pkg_check_modules(PETSC IMPORTED_TARGET PETSc>=3.18)
if(NOT PETSC_FOUND)
  pkg_check_modules(PETSC IMPORTED_TARGET petsc>=3.18)
endif()
if(NOT PETSC_FOUND)
  message(FATAL_ERROR "fmrecon: PETSc >= 3.18 with complex scalars not found. Debian: apt-get install "
    "libpetsc-complex-dev; elsewhere set PETSC_DIR (and PETSC_ARCH) to a complex build.")
endif()
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${PETSC_INCLUDE_DIRS} ${MPI_C_INCLUDE_DIRS})
check_symbol_exists(PETSC_USE_COMPLEX "petscconf.h" FMR_PETSC_IS_COMPLEX)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT FMR_PETSC_IS_COMPLEX)
  unset(FMR_PETSC_IS_COMPLEX CACHE)
  message(FATAL_ERROR "fmrecon: the PETSc found in '${PETSC_INCLUDE_DIRS}' uses REAL scalars; fmrecon needs "
    "complex scalars. Debian: -DPETSC_DIR=/usr/lib/petscdir/petsc-complex (package libpetsc-complex-dev); "
    "elsewhere a PETSc configured --with-scalar-type=complex.")
endif()
add_library(fmr::petsc INTERFACE IMPORTED)
target_link_libraries(fmr::petsc INTERFACE PkgConfig::PETSC)

# ---- parallel HDF5 ----
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "fmrecon: the HDF5 found (${HDF5_INCLUDE_DIRS}) is serial; fmrecon needs parallel HDF5. "
    "Debian: apt-get install libhdf5-openmpi-dev; elsewhere set HDF5_ROOT to a parallel build.")
endif()
add_library(fmr::hdf5 INTERFACE IMPORTED)
target_include_directories(fmr::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
target_link_libraries(fmr::hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(fmr::hdf5 INTERFACE ${HDF5_C_DEFINITIONS} H5_USE_110_API)

# ---- cJSON ----
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
add_library(fmr::cjson INTERFACE IMPORTED)
target_link_libraries(fmr::cjson INTERFACE PkgConfig::CJSON)

# ---- LAPACKE ----
find_path(LAPACKE_INCLUDE_DIR lapacke.h PATH_SUFFIXES openblas)
find_library(LAPACKE_LIBRARY NAMES lapacke openblas)
if(NOT LAPACKE_INCLUDE_DIR OR NOT LAPACKE_LIBRARY)
  message(FATAL_ERROR "fmrecon: LAPACKE not found. Debian: apt-get install liblapacke-dev.")
endif()
add_library(fmr::lapacke INTERFACE IMPORTED)
target_include_directories(fmr::lapacke INTERFACE ${LAPACKE_INCLUDE_DIR})
target_link_libraries(fmr::lapacke INTERFACE ${LAPACKE_LIBRARY})

# ---- GSL (wavelet transforms) ----
find_package(GSL REQUIRED)
add_library(fmr::gsl INTERFACE IMPORTED)
target_link_libraries(fmr::gsl INTERFACE GSL::gsl)

# ---- oneDNN 2.x C API (Debian's config needs OpenCL: ocl-icd-opencl-dev) ----
find_package(dnnl 2.6 CONFIG REQUIRED)
add_library(fmr::dnnl INTERFACE IMPORTED)
target_link_libraries(fmr::dnnl INTERFACE DNNL::dnnl)

# ---- NIfTI-1 (niftilib's nifti1_io + znzlib; Debian libnifti2-dev) ----
find_path(NIFTI_INCLUDE_DIR nifti1_io.h PATH_SUFFIXES nifti)
find_library(NIFTI_IO_LIBRARY NAMES niftiio)
find_library(NIFTI_ZNZ_LIBRARY NAMES znz)
if(NOT NIFTI_INCLUDE_DIR OR NOT NIFTI_IO_LIBRARY OR NOT NIFTI_ZNZ_LIBRARY)
  message(FATAL_ERROR "fmrecon: niftilib (nifti1_io.h, libniftiio, libznz) not found. Debian: apt-get install libnifti2-dev")
endif()
add_library(fmr::nifti INTERFACE IMPORTED)
target_include_directories(fmr::nifti INTERFACE ${NIFTI_INCLUDE_DIR})
target_link_libraries(fmr::nifti INTERFACE ${NIFTI_IO_LIBRARY} ${NIFTI_ZNZ_LIBRARY} m)

# ---- DCMTK (Debian libdcmtk-dev): DICOM in and out, used by one C++ file ----
find_package(DCMTK CONFIG QUIET)
if(NOT DCMTK_FOUND OR NOT TARGET DCMTK::dcmdata)
  message(FATAL_ERROR "fmrecon: DCMTK not found. Debian: apt-get install libdcmtk-dev; elsewhere set DCMTK_DIR")
endif()
add_library(fmr::dcmtk INTERFACE IMPORTED)
target_link_libraries(fmr::dcmtk INTERFACE DCMTK::dcmdata DCMTK::ofstd DCMTK::oflog)

# ---- giflib (Debian libgif-dev): cine GIFs; FreeType (libfreetype-dev): montage labels ----
find_path(GIF_INCLUDE_DIR gif_lib.h)
find_library(GIF_LIBRARY NAMES gif)
if(NOT GIF_INCLUDE_DIR OR NOT GIF_LIBRARY)
  message(FATAL_ERROR "fmrecon: giflib not found. Debian: apt-get install libgif-dev")
endif()
add_library(fmr::gif INTERFACE IMPORTED)
target_include_directories(fmr::gif INTERFACE ${GIF_INCLUDE_DIR})
target_link_libraries(fmr::gif INTERFACE ${GIF_LIBRARY})
find_package(Freetype REQUIRED)
