!> @file obridge_nemo_nml.F90
!> @brief The &namobridge switches of NEMO (the same block as gyre's and CROCO's) and the table of coupled fields.
!>
!> Two readings of the same NAMELIST group:
!>  - obn_nml_peek: before mpp_start, every rank reads namelist_ref then namelist_cfg from disk (NEMO's namelist
!>    buffers do not exist yet) to learn ln_obridge and cn_obr_name, which decide the communicator;
!>  - obn_nml_read: in nemo_init, READ_NML_REF/READ_NML_CFG as for every NEMO namelist (a misspelled variable
!>    stops the run), then every switch is checked; an invalid value stops NEMO through ctl_stop naming the switch.
!> Field names on the wire: 'sst','sss','ssh' (2-D), 'u','v','tem3d','sal3d' (3-D, jpk levels), and 'mask'
!> (tmask, jpk levels, sent once at step nit000-1).
MODULE obridge_nemo_nml
   USE par_oce        ! jpk, jp_tem, jp_sal
   USE in_out_manager ! numnam_ref, numnam_cfg, numout, lwp
   USE lib_mpp        ! ctl_stop, ctl_nam

   IMPLICIT NONE
   PRIVATE

   PUBLIC   obn_nml_peek, obn_nml_read, obn_field_kind, obn_field_nlev

   INTEGER, PUBLIC, PARAMETER ::   jp_obr_maxfld = 10   !: most entries of cn_obr_send
   INTEGER, PUBLIC, PARAMETER ::   jp_obr_namlen = 64   !: longest component name
   ! kinds of coupled fields: where the values live in NEMO
   INTEGER, PUBLIC, PARAMETER ::   jp_obr_sst = 1, jp_obr_sss = 2, jp_obr_ssh = 3, jp_obr_u = 4, jp_obr_v = 5,   &
      &                            jp_obr_tem3d = 6, jp_obr_sal3d = 7, jp_obr_mask = 8
   CHARACTER(len=8), PARAMETER ::   cp_names(8) = (/ 'sst     ', 'sss     ', 'ssh     ', 'u       ', 'v       ',   &
      &                                              'tem3d   ', 'sal3d   ', 'mask    ' /)

   !                                                  !!* namelist namobridge: defaults leave NEMO unchanged *
   LOGICAL , PUBLIC ::   ln_obridge      = .FALSE.     !: master switch
   CHARACTER(len=jp_obr_namlen), PUBLIC ::   cn_obr_name = 'nemo'   !: bridge component name of this run
   INTEGER , PUBLIC ::   nn_obr_freq     = 1           !: send the state every nn_obr_freq steps
   CHARACTER(len=16), PUBLIC ::   cn_obr_send(jp_obr_maxfld) = ''   !: fields to send
   LOGICAL , PUBLIC ::   ln_obr_emulator = .FALSE.     !: receive '<name>_emu' and apply it
   CHARACTER(len=16), PUBLIC ::   cn_obr_emu_mode = 'replace'       !: 'replace' or 'increment'
   INTEGER , PUBLIC ::   nn_obr_emu_freq = 1           !: ask for an emulated state every nn_obr_emu_freq steps
   LOGICAL , PUBLIC ::   ln_obr_spinup   = .FALSE.     !: at start, replace the initial state by '<name>_init'
   LOGICAL , PUBLIC ::   ln_obr_required = .TRUE.      !: stop if the worker is absent or dies
   REAL(wp), PUBLIC ::   rn_obr_timeout  = 300._wp     !: seconds any blocking wait may last

   NAMELIST/namobridge/ ln_obridge, cn_obr_name, nn_obr_freq, cn_obr_send, ln_obr_emulator, cn_obr_emu_mode,   &
      &                 nn_obr_emu_freq, ln_obr_spinup, ln_obr_required, rn_obr_timeout

#  include "read_nml_substitute.h90"

CONTAINS

   !> Before mpp_start: read ln_obridge and cn_obr_name from the namelist files on disk (NEMO's buffers do not
   !> exist yet). A &namobridge group that cannot be read leaves cd_err set: the caller must stop the job, since
   !> a wrong guess of ln_obridge would put NEMO and the worker in one communicator and hang both.
   SUBROUTINE obn_nml_peek( ld_on, cd_name, cd_err )
      LOGICAL         , INTENT(out) ::   ld_on     !< ln_obridge (namelist_cfg over namelist_ref)
      CHARACTER(len=*), INTENT(out) ::   cd_name   !< cn_obr_name
      CHARACTER(len=*), INTENT(out) ::   cd_err    !< '' or why a file's &namobridge cannot be read
      cd_err = ''
      CALL peek_file( 'namelist_ref', cd_err )
      CALL peek_file( 'namelist_cfg', cd_err )
      ld_on   = ln_obridge
      cd_name = cn_obr_name
   END SUBROUTINE obn_nml_peek

   !> Read &namobridge from one namelist file when it has the group.
   SUBROUTINE peek_file( cd_file, cd_err )
      CHARACTER(len=*), INTENT(in   ) ::   cd_file   !< namelist file name in the run folder
      CHARACTER(len=*), INTENT(inout) ::   cd_err    !< set when the group is there but unreadable
      CHARACTER(len=256) ::   clmsg
      INTEGER ::   inum, ios
      OPEN( NEWUNIT=inum, FILE=cd_file, STATUS='old', ACTION='read', IOSTAT=ios )
      IF( ios /= 0 )   RETURN
      READ( inum, NML=namobridge, IOSTAT=ios, IOMSG=clmsg )
      CLOSE( inum )
      IF( ios > 0 .AND. cd_err == '' )   cd_err = cd_file//': &namobridge cannot be read: '//TRIM(clmsg)
   END SUBROUTINE peek_file

   !> In nemo_init: READ_NML_REF/CFG of &namobridge, then check every switch (ctl_stop naming it).
   SUBROUTINE obn_nml_read( kerr, ld_peeked )
      INTEGER, INTENT(out)           ::   kerr        !< number of invalid switches (0: all valid)
      LOGICAL, INTENT(in ), OPTIONAL ::   ld_peeked   !< ln_obridge as obn_nml_peek found it (chose the communicator)
      INTEGER ::   ios
      !
      READ_NML_REF(numnam,namobridge)
      READ_NML_CFG(numnam,namobridge)
      IF( lwm )   WRITE( numond, namobridge )
      kerr = 0
      IF( PRESENT(ld_peeked) ) THEN
         IF( ln_obridge .NEQV. ld_peeked )   CALL bad( 'ln_obridge', 'was read differently before mpp_start; '//   &
         &                                          'check that namelist_ref/namelist_cfg are readable on every rank' )
      ENDIF
      IF( nn_obr_freq < 1 )               CALL bad( 'nn_obr_freq', 'must be >= 1, got '//TRIM(itoa(nn_obr_freq)) )
      IF( nn_obr_emu_freq < 1 )           CALL bad( 'nn_obr_emu_freq', 'must be >= 1, got '//TRIM(itoa(nn_obr_emu_freq)) )
      IF( rn_obr_timeout <= 0._wp )       CALL bad( 'rn_obr_timeout', 'must be > 0 seconds' )
      IF( cn_obr_emu_mode /= 'replace' .AND. cn_obr_emu_mode /= 'increment' )   &
         &                                CALL bad( 'cn_obr_emu_mode', '''' // TRIM(cn_obr_emu_mode) //   &
         &                                          ''' is not ''replace'' or ''increment''' )
      IF( LEN_TRIM(cn_obr_name) == 0 .OR. INDEX(TRIM(cn_obr_name), ' ') > 0 )   &
         &                                CALL bad( 'cn_obr_name', '''' // TRIM(cn_obr_name) //   &
         &                                          ''' must be 1..64 characters without blanks' )
      CALL check_send()
      IF( ln_obridge .AND. (ln_obr_emulator .OR. ln_obr_spinup) .AND. nstate() == 0 )   &
         &   CALL bad( 'cn_obr_send', 'lists no state field to receive (ln_obr_emulator or ln_obr_spinup is on)' )
      IF( lwp )   CALL print_switches()
      !
   CONTAINS
      SUBROUTINE bad( cd_switch, cd_why )
         CHARACTER(len=*), INTENT(in) ::   cd_switch   !< switch name
         CHARACTER(len=*), INTENT(in) ::   cd_why      !< what is wrong with its value
         kerr = kerr + 1
         CALL ctl_stop( 'obn_nml_read: &namobridge: invalid '//cd_switch//': '//cd_why )
      END SUBROUTINE bad
      !
      SUBROUTINE check_send()
         INTEGER ::   jf, jg
         DO jf = 1, jp_obr_maxfld
            IF( LEN_TRIM(cn_obr_send(jf)) == 0 )   CYCLE
            IF( obn_field_kind(cn_obr_send(jf)) == 0 )   CALL bad( 'cn_obr_send', '''' // TRIM(cn_obr_send(jf)) //   &
               &   ''' is not a NEMO field (sst, sss, ssh, u, v, tem3d, sal3d or mask)' )
            DO jg = 1, jf - 1
               IF( cn_obr_send(jg) == cn_obr_send(jf) )   CALL bad( 'cn_obr_send', '''' // TRIM(cn_obr_send(jf)) //   &
                  &                                                 ''' is listed twice' )
            END DO
         END DO
      END SUBROUTINE check_send
   END SUBROUTINE obn_nml_read

   !> Number of state fields (all but 'mask') in cn_obr_send.
   INTEGER FUNCTION nstate()
      INTEGER ::   jf
      nstate = 0
      DO jf = 1, jp_obr_maxfld
         IF( obn_field_kind(cn_obr_send(jf)) > 0 .AND. obn_field_kind(cn_obr_send(jf)) /= jp_obr_mask )   &
            &   nstate = nstate + 1
      END DO
   END FUNCTION nstate

   !> Kind (jp_obr_sst ... jp_obr_mask) of a field name; 0 when unknown.
   INTEGER FUNCTION obn_field_kind( cd_name )
      CHARACTER(len=*), INTENT(in) ::   cd_name   !< a name of cn_obr_send
      INTEGER ::   jk
      obn_field_kind = 0
      DO jk = 1, SIZE(cp_names)
         IF( TRIM(cd_name) == TRIM(cp_names(jk)) )   obn_field_kind = jk
      END DO
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

   CHARACTER(len=12) FUNCTION itoa( k )
      INTEGER, INTENT(in) ::   k   !< integer to print
      WRITE(itoa, '(I0)') k
   END FUNCTION itoa

END MODULE obridge_nemo_nml
