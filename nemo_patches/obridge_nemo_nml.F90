!> @file obridge_nemo_nml.F90
!> @brief NEMO's table of coupled fields, and its two readings of &namobridge through the bridge's host layer
!>        (obr_host_nml, bridge/fortran, copied by the installer): the one reader of the group, shared with the
!>        gyre and CROCO.
!>
!>  - obn_nml_peek: before mpp_start, every rank reads namelist_ref then namelist_cfg from disk (NEMO's namelist
!>    buffers do not exist yet) to learn ln_obridge and cn_obr_name, which decide the communicator;
!>  - obn_nml_read: in nemo_init, the same files again, then every switch is checked; an invalid value stops NEMO
!>    through ctl_stop naming the switch.
!> Field names on the wire: 'sst','sss','ssh' (2-D), 'u','v','tem3d','sal3d' (3-D, jpk levels), and 'mask'
!> (tmask, jpk levels, sent once at step nit000-1).
MODULE obridge_nemo_nml
   USE par_oce        ! jpk, jp_tem, jp_sal
   USE in_out_manager ! numout, numond, lwp, lwm
   USE lib_mpp        ! ctl_stop
   USE obr_host_nml, ONLY: obr_nml_defaults, obr_nml_read, obr_nml_check, obr_nml_write, obr_nml_is_mask,   &
      &                    ln_obridge, cn_obr_name, nn_obr_freq, cn_obr_send, ln_obr_emulator,   &
      &                    cn_obr_emu_mode, nn_obr_emu_freq, ln_obr_spinup, ln_obr_required, rn_obr_timeout

   IMPLICIT NONE
   PRIVATE

   PUBLIC   obn_nml_peek, obn_nml_read, obn_field_kind, obn_field_nlev, cp_names
   !                  !!* &namobridge switches (obr_host_nml), as NEMO's code names them *
   PUBLIC   ln_obridge, cn_obr_name, nn_obr_freq, cn_obr_send, ln_obr_emulator, cn_obr_emu_mode, nn_obr_emu_freq,   &
      &     ln_obr_spinup, ln_obr_required, rn_obr_timeout

   INTEGER, PUBLIC, PARAMETER ::   jp_obr_maxfld = 10   !: most entries of cn_obr_send
   INTEGER, PUBLIC, PARAMETER ::   jp_obr_namlen = 64   !: longest component name
   ! kinds of coupled fields: where the values live in NEMO
   INTEGER, PUBLIC, PARAMETER ::   jp_obr_sst = 1, jp_obr_sss = 2, jp_obr_ssh = 3, jp_obr_u = 4, jp_obr_v = 5,   &
      &                            jp_obr_tem3d = 6, jp_obr_sal3d = 7, jp_obr_mask = 8
   CHARACTER(len=8), PARAMETER ::   cp_names(7) = (/ 'sst     ', 'sss     ', 'ssh     ', 'u       ', 'v       ',   &
      &                                              'tem3d   ', 'sal3d   ' /)
   INTEGER ::   nerr = 0   ! invalid switches found by obn_nml_read

CONTAINS

   !> Before mpp_start: read ln_obridge and cn_obr_name from the namelist files on disk (NEMO's buffers do not
   !> exist yet). A &namobridge group that cannot be read leaves cd_err set: the caller must stop the job, since
   !> a wrong guess of ln_obridge would put NEMO and the worker in one communicator and hang both.
   SUBROUTINE obn_nml_peek( ld_on, cd_name, cd_err )
      LOGICAL         , INTENT(out) ::   ld_on     !< ln_obridge (namelist_cfg over namelist_ref)
      CHARACTER(len=*), INTENT(out) ::   cd_name   !< cn_obr_name
      CHARACTER(len=*), INTENT(out) ::   cd_err    !< '' or why a file's &namobridge cannot be read
      CALL read_files( cd_err )
      ld_on   = ln_obridge
      cd_name = cn_obr_name
   END SUBROUTINE obn_nml_peek

   !> The defaults, then &namobridge of namelist_ref and namelist_cfg (a missing file keeps the values).
   SUBROUTINE read_files( cd_err )
      CHARACTER(len=*), INTENT(out) ::   cd_err    !< '' or why a file's &namobridge cannot be read
      cd_err = ''
      CALL obr_nml_defaults( 'nemo', jp_obr_maxfld )
      CALL obr_nml_read( 'namelist_ref', cd_err, ld_optional = .TRUE. )
      CALL obr_nml_read( 'namelist_cfg', cd_err, ld_optional = .TRUE. )
   END SUBROUTINE read_files

   !> In nemo_init: read &namobridge again, then check every switch (ctl_stop naming it).
   SUBROUTINE obn_nml_read( kerr, ld_peeked )
      INTEGER, INTENT(out)           ::   kerr        !< number of invalid switches (0: all valid)
      LOGICAL, INTENT(in ), OPTIONAL ::   ld_peeked   !< ln_obridge as obn_nml_peek found it (chose the communicator)
      CHARACTER(len=512) ::   clerr
      !
      nerr = 0
      CALL read_files( clerr )
      IF( clerr /= '' )   CALL bad( clerr )
      IF( lwm )   CALL obr_nml_write( numond )
      IF( PRESENT(ld_peeked) ) THEN
         IF( ln_obridge .NEQV. ld_peeked )   CALL bad( 'invalid ln_obridge: was read differently before mpp_start; '//   &
         &                                             'check that namelist_ref/namelist_cfg are readable on every rank' )
      ENDIF
      CALL obr_nml_check( field_code, 'a NEMO field (sst, sss, ssh, u, v, tem3d, sal3d or mask)', bad,   &
         &                ld_invalid = .TRUE. )
      kerr = nerr
      IF( lwp )   CALL print_switches()
      !
   END SUBROUTINE obn_nml_read

   !> One invalid switch: count it and stop through ctl_stop (NEMO stops after nemo_init when nstop > 0).
   SUBROUTINE bad( cd_msg )
      CHARACTER(len=*), INTENT(in) ::   cd_msg   !< 'invalid <switch>: <why>'
      nerr = nerr + 1
      CALL ctl_stop( 'obn_nml_read: &namobridge: '//cd_msg )
   END SUBROUTINE bad

   !> The host layer's code of a state field name: its kind, 0 for 'mask' and unknown names.
   INTEGER FUNCTION field_code( cd_name )
      CHARACTER(len=*), INTENT(in) ::   cd_name   !< a name of cn_obr_send
      field_code = obn_field_kind( cd_name )
      IF( field_code == jp_obr_mask )   field_code = 0
   END FUNCTION field_code

   !> Kind (jp_obr_sst ... jp_obr_mask) of a field name; 0 when unknown.
   INTEGER FUNCTION obn_field_kind( cd_name )
      CHARACTER(len=*), INTENT(in) ::   cd_name   !< a name of cn_obr_send
      INTEGER ::   jk
      obn_field_kind = 0
      DO jk = 1, SIZE(cp_names)
         IF( TRIM(cd_name) == TRIM(cp_names(jk)) )   obn_field_kind = jk
      END DO
      IF( obr_nml_is_mask( cd_name ) )   obn_field_kind = jp_obr_mask
   END FUNCTION obn_field_kind

   !> Levels of a field kind on the wire: 1 for surface fields, jpk for 3-D ones.
   INTEGER FUNCTION obn_field_nlev( kkind )
      INTEGER, INTENT(in) ::   kkind   !< jp_obr_sst ... jp_obr_mask
      SELECT CASE( kkind )
      CASE( jp_obr_sst, jp_obr_sss, jp_obr_ssh )   ;   obn_field_nlev = 1
      CASE DEFAULT                                 ;   obn_field_nlev = jpk
      END SELECT
   END FUNCTION obn_field_nlev

   SUBROUTINE print_switches()
      INTEGER ::   jf
      WRITE(numout,*)
      WRITE(numout,*) 'obn_nml_read : oceanbridge coupling (&namobridge)'
      WRITE(numout,*) '   ln_obridge      = ', ln_obridge
      WRITE(numout,*) '   cn_obr_name     = ', TRIM(cn_obr_name)
      WRITE(numout,*) '   nn_obr_freq     = ', nn_obr_freq
      WRITE(numout,*) '   cn_obr_send     = ', (TRIM(cn_obr_send(jf))//' ', jf = 1, jp_obr_maxfld)
      WRITE(numout,*) '   ln_obr_emulator = ', ln_obr_emulator, ' mode ', TRIM(cn_obr_emu_mode), ' every ', nn_obr_emu_freq
      WRITE(numout,*) '   ln_obr_spinup   = ', ln_obr_spinup
      WRITE(numout,*) '   ln_obr_required = ', ln_obr_required, ' timeout (s) ', rn_obr_timeout
   END SUBROUTINE print_switches

END MODULE obridge_nemo_nml
