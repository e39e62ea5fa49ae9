!> Stand-ins for the few NEMO 5.0 modules that the adapter (nemo_patches/obridge_nemo*.F90) uses, so that
!> the adapter compiles and runs in CI without NEMO. Only names and kinds mirror NEMO; none of NEMO's code.
MODULE par_kind
   IMPLICIT NONE
   INTEGER, PUBLIC, PARAMETER ::   wp = SELECTED_REAL_KIND(12, 307)   !: working precision (NEMO: double)
END MODULE par_kind

MODULE par_oce
   USE par_kind
   IMPLICIT NONE
   INTEGER, PUBLIC, PARAMETER ::   jpts = 2, jp_tem = 1, jp_sal = 2, nn_hls = 2
   INTEGER, PUBLIC ::   jpi, jpj, jpk                    !: local sizes with halos, levels
   INTEGER, PUBLIC ::   Ni0glo, Nj0glo                   !: global interior size
   INTEGER, PUBLIC ::   Ni_0, Nj_0, Nis0, Nie0, Njs0, Nje0   !: local interior size and bounds
   INTEGER, PUBLIC ::   jpni = 1, jpnj = 1, jpnij = 1    !: the layout and its ocean subdomains (mppini)
END MODULE par_oce

MODULE in_out_manager
   IMPLICIT NONE
   INTEGER, PUBLIC ::   numout = 6, numond = 6, nit000 = 1, nitend = 1, nstop = 0
   LOGICAL, PUBLIC ::   lwp = .FALSE., lwm = .FALSE.
   CHARACTER(LEN=:), ALLOCATABLE, PUBLIC ::   numnam_ref, numnam_cfg   !: namelist files as internal files
END MODULE in_out_manager

MODULE dom_oce
   USE par_oce
   IMPLICIT NONE
   INTEGER , PUBLIC ::   nimpp, njmpp, narea, Nbb = 1, Nnn = 2
   REAL(wp), PUBLIC ::   rn_Dt = 3600._wp
   REAL(wp), PUBLIC, ALLOCATABLE ::   tmask(:,:,:), umask(:,:,:), vmask(:,:,:)
END MODULE dom_oce

MODULE oce
   USE par_oce
   IMPLICIT NONE
   REAL(wp), PUBLIC, ALLOCATABLE ::   ts(:,:,:,:,:), uu(:,:,:,:), vv(:,:,:,:), ssh(:,:,:)
END MODULE oce

MODULE lib_mpp
   USE in_out_manager
   IMPLICIT NONE
   INTEGER, PUBLIC ::   mpi_comm_oce
CONTAINS
   SUBROUTINE ctl_stop( cd1, cd2 )
      CHARACTER(len=*), INTENT(in)           ::   cd1   !< message
      CHARACTER(len=*), INTENT(in), OPTIONAL ::   cd2   !< more message
      nstop = nstop + 1
      WRITE(numout,*) ' ===>>> : E R R O R'
      WRITE(numout,*) TRIM(cd1)
      IF( PRESENT(cd2) )   WRITE(numout,*) TRIM(cd2)
   END SUBROUTINE ctl_stop
   SUBROUTINE ctl_warn( cd1, cd2 )
      CHARACTER(len=*), INTENT(in)           ::   cd1   !< message
      CHARACTER(len=*), INTENT(in), OPTIONAL ::   cd2   !< more message
      WRITE(numout,*) ' ===>>> : W A R N I N G'
      WRITE(numout,*) TRIM(cd1)
      IF( PRESENT(cd2) )   WRITE(numout,*) TRIM(cd2)
   END SUBROUTINE ctl_warn
   SUBROUTINE ctl_nam( kios, cdnam )
      INTEGER         , INTENT(inout) ::   kios    !< iostat of the namelist read
      CHARACTER(len=*), INTENT(in   ) ::   cdnam   !< group name
      IF( kios > 0 )   CALL ctl_stop( 'misspelled variable in namelist '//TRIM(cdnam) )
      kios = 0
   END SUBROUTINE ctl_nam
END MODULE lib_mpp

MODULE lbclnk
   USE par_kind
   IMPLICIT NONE
   !> Halo exchange: a no-op here (one box per rank, halos never read by the stand-in model).
   INTERFACE lbc_lnk
      MODULE PROCEDURE lbc_lnk_2d, lbc_lnk_3d
   END INTERFACE
CONTAINS
   SUBROUTINE lbc_lnk_2d( cdname, p1, cd1, ps1 )
      CHARACTER(len=*), INTENT(in) ::   cdname, cd1   !< caller, grid point
      REAL(wp), INTENT(inout) ::   p1(:,:)            !< field
      REAL(wp), INTENT(in) ::   ps1                   !< sign
   END SUBROUTINE lbc_lnk_2d
   SUBROUTINE lbc_lnk_3d( cdname, p1, cd1, ps1, p2, cd2, ps2, p3, cd3, ps3, p4, cd4, ps4 )
      CHARACTER(len=*), INTENT(in) ::   cdname, cd1   !< caller, grid point
      REAL(wp), INTENT(inout) ::   p1(:,:,:)          !< field
      REAL(wp), INTENT(in) ::   ps1                   !< sign
      CHARACTER(len=*), INTENT(in), OPTIONAL ::   cd2, cd3, cd4      !< grid points
      REAL(wp), INTENT(inout), OPTIONAL ::   p2(:,:,:), p3(:,:,:), p4(:,:,:)   !< fields
      REAL(wp), INTENT(in), OPTIONAL ::   ps2, ps3, ps4   !< signs
   END SUBROUTINE lbc_lnk_3d
END MODULE lbclnk
