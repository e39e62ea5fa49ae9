!> @file obridge_nemo.F90
!> @brief NEMO adapter of oceanbridge: NEMO's state handed to the bridge's host layer (module obr_host,
!>        bridge/fortran, copied by the installer), which owns the &namobridge switches, the schedule, the
!>        failure policy and the OASIS initial exchange.
!>
!> Five calls, inserted into the configuration's own copies of NEMO routines (nemo_patches/hooks.toml):
!>  - obn_start(comm)  nemo_init, in place of mpp_start's MPI_COMM_WORLD: MPI, then (ln_obridge) obr_host_init;
!>                     with key_oasis3 NEMO's own cpl_init runs instead and obn_define joins its OASIS component;
!>  - obn_define       nemo_init, after istate_init and before sbc_init (so before NEMO's oasis_enddef): read
!>                     &namobridge, declare the box of interior T points (Nis0:Nie0 x Njs0:Nje0 at 0-based
!>                     offset nimpp-1, njmpp-1 of the Ni0glo x Nj0glo grid), the mask and the fields;
!>  - obn_begin        end of nemo_init: spin-up, then step nit000-1 of the schedule (mask, initial state);
!>  - obn_step(kt,Kmm) after stp_ctl (RK3: Kmm = Nbb, MLF: Kmm = Nnn): step kt of the schedule;
!>  - obn_finalize     nemo_gcm, before the files are closed.
!> NEMO's arrays are no TARGETs: the fields of cn_obr_send are staged in zst (interior points) before each step
!> and copied back when a received state was applied (the host layer changes ocean points only); then the
!> halos are refreshed by lbc_lnk.
MODULE obridge_nemo
   USE MPI
   USE obr_host       ! the oceanbridge host layer (bridge/fortran, copied by the installer)
   USE obridge_nemo_nml
   USE oce            ! ts, uu, vv, ssh
   USE dom_oce        ! tmask, umask, vmask, nimpp, njmpp, rn_Dt
   USE par_oce, ONLY: jpni, jpnj, jpnij   ! the layout and its ocean subdomains (mppini)
   USE in_out_manager ! numout, lwp, nit000, nitend
   USE lib_mpp        ! ctl_stop, ctl_warn, mpi_comm_oce, nstop
   USE lbclnk         ! lbc_lnk
#if defined key_obridge_oasis
# if ! defined key_oasis3
#  error "key_obridge_oasis needs key_oasis3: NEMO owns the OASIS component (cpl_init) that the bridge joins"
# endif
   USE cpl_oasis3, ONLY: ncomp_id   ! made public by the oceanbridge patch of cpl_oasis3.F90
#endif

   IMPLICIT NONE
   PRIVATE

   PUBLIC   obn_start, obn_define, obn_begin, obn_step, obn_finalize

   LOGICAL , PUBLIC ::   lk_obr = .FALSE.        !: the bridge is in use and healthy
   REAL(wp), PUBLIC ::   rn_obr_cpl_time = 0._wp !: wall time spent in the bridge calls of the time loop (s)

   LOGICAL  ::   ll_started = .FALSE.             ! obn_start was called (MPI backend)
   LOGICAL  ::   ll_peeked = .FALSE.              ! ln_obridge as seen before mpp_start
   LOGICAL  ::   ll_joined = .FALSE.              ! the bridge was joined
   INTEGER  ::   nfld = 0                         ! number of fields in cn_obr_send
   INTEGER  ::   nkind(jp_obr_maxfld)  = 0        ! kind (jp_obr_sst...) of each field
   REAL(wp), ALLOCATABLE, TARGET ::   zst(:,:,:,:)   ! staged state (Ni_0, Nj_0, jpk, jp_obr_sal3d)
   INTEGER  ::   nloop = 0                        ! steps timed by obn_step
   REAL(wp) ::   rloop0 = -1._wp, rloop1 = 0._wp  ! wall time of the first and last obn_step

CONTAINS

   !> Before mpp_start: start MPI and return NEMO's communicator (the bridge's local one when ln_obridge).
   SUBROUTINE obn_start( kcomm )
      INTEGER, INTENT(out) ::   kcomm   !< communicator to pass to mpp_start
      CHARACTER(len=jp_obr_namlen) ::   clname
      CHARACTER(len=512) ::   clerr
      LOGICAL ::   llinit
      INTEGER ::   ierr
      CALL MPI_Initialized( llinit, ierr )
      IF( .NOT. llinit )   CALL MPI_Init( ierr )   ! so that NEMO's mppstop, not the bridge, finalizes MPI
      kcomm = MPI_COMM_WORLD
      ll_started = .TRUE.
      CALL obn_nml_peek( ll_peeked, clname, clerr )
      IF( clerr /= '' ) THEN                       ! every rank reads the same files: all stop here
         WRITE(0,'(a)') ' oceanbridge: NEMO stops: '//TRIM(clerr)
         FLUSH(0)
         CALL MPI_Abort( MPI_COMM_WORLD, 1, ierr )
      ENDIF
      IF( .NOT. ll_peeked )   RETURN
      CALL obr_host_init( 'nemo', '', kcomm, nemo_stop, nemo_warn )   ! stops the job if the launch is wrong
      ll_joined = .TRUE.
      lk_obr    = .TRUE.
   END SUBROUTINE obn_start

   !> In nemo_init before sbc_init: switches, then the partition and fields, and the end of the definitions.
   SUBROUTINE obn_define()
      INTEGER ::   ierr, jf, jk
      REAL(wp), POINTER ::   zp(:,:,:)
#if defined key_obridge_oasis
      CALL obn_nml_read( ierr )
      IF( ierr == 0 .AND. ln_obridge ) THEN        ! join the OASIS component 'oceanx' of NEMO's cpl_init
         CALL obr_host_init_oasis( 'nemo', 'oceanx', ncomp_id, mpi_comm_oce, nemo_stop, nemo_warn )
         ll_joined = .TRUE.
         lk_obr    = .TRUE.
      ENDIF
#else
      IF( ll_started ) THEN
         CALL obn_nml_read( ierr, ll_peeked )
      ELSE                                         ! obn_start sits in NEMO's non-XIOS, non-OASIS branch only
         CALL obn_nml_read( ierr )
         IF( ln_obridge ) THEN
            CALL ctl_stop( 'obn_define: &namobridge: ln_obridge = .true. but the bridge was not started before '//   &
               &           'mpp_start: NEMO built with key_xios takes its communicator from XIOS, which oceanbridge '//   &
               &           'does not hook; build without key_xios, or with key_oasis3 + key_obridge_oasis' )
            ierr = ierr + 1
         ENDIF
      ENDIF
#endif
      IF( ierr > 0 ) THEN
         IF( ll_joined )   CALL obr_host_abort( 'invalid &namobridge switch (see ocean.output: E R R O R)' )
         lk_obr = .FALSE.
         RETURN
      ENDIF
      IF( .NOT. lk_obr )   RETURN
      nfld = 0
      DO jf = 1, jp_obr_maxfld
         IF( LEN_TRIM(cn_obr_send(jf)) == 0 )   CYCLE
         nfld = nfld + 1
         nkind(nfld) = obn_field_kind( cn_obr_send(jf) )
      END DO
      ALLOCATE( zst(Ni_0, Nj_0, jpk, jp_obr_sal3d) )
      zst(:,:,:,:) = 0._wp
      ! with land-only subdomains removed (mppini: jpnij < jpni*jpnj) the ranks' boxes leave the land to no rank:
      ! declared, so the bridge accepts the gaps and the worker receives land (0) there
      CALL obr_host_define( Ni0glo, Nj0glo, nimpp - 1, njmpp - 1, Ni_0, Nj_0, nit000, REAL(rn_Dt, wp),   &
         &                  ld_gaps = jpnij < jpni * jpnj )
      CALL obr_host_mask( tmask(Nis0:Nie0,Njs0:Nje0,:) )
      DO jk = 1, jp_obr_sal3d
         zp => zst(:,:,1:obn_field_nlev(jk),jk)
         SELECT CASE( jk )
         CASE( jp_obr_u )   ;   CALL obr_host_field( (/ cp_names(jk) /), zp, umask(Nis0:Nie0,Njs0:Nje0,:) )
         CASE( jp_obr_v )   ;   CALL obr_host_field( (/ cp_names(jk) /), zp, vmask(Nis0:Nie0,Njs0:Nje0,:) )
         CASE DEFAULT       ;   CALL obr_host_field( (/ cp_names(jk) /), zp, tmask(Nis0:Nie0,Njs0:Nje0,1:SIZE(zp,3)) )
         END SELECT
      END DO
      ! stp_ctl already stops the run on NaN before every put: skip the bridge's second scan
      CALL obr_host_enddef( ld_nancheck = .FALSE. )
      lk_obr = obr_host_active()
      IF( lwp .AND. lk_obr )   WRITE(numout,'(a,i0,a,i0,a,i0,a,i0,a,i0,a)') ' obn_define: ', nfld, ' field(s) on a ',   &
         &   Ni0glo, ' x ', Nj0glo, ' grid, this rank''s box at offset (', nimpp - 1, ',', njmpp - 1, ')'
   END SUBROUTINE obn_define

   !> End of nemo_init: spin-up (ln_obr_spinup, both time levels), then step nit000-1 of the schedule.
   SUBROUTINE obn_begin()
      LOGICAL ::   ll
      IF( .NOT. lk_obr )   RETURN
      CALL stage( Nbb )
      CALL obr_host_spinup( ll )
      IF( ll ) THEN
         CALL unstage( Nbb )
         IF( Nnn /= Nbb )   CALL unstage( Nnn )
         IF( lwp )   WRITE(numout,'(a,i0)') ' obn_begin: initial state replaced by the received one at step ', nit000 - 1
      ENDIF
      CALL stage( kmm_now() )
      CALL obr_host_step( nit000 - 1, ll )
      lk_obr = obr_host_active()
   END SUBROUTINE obn_begin

   !> Time level of the state after a step: Nbb with RK3 (key_RK3), Nnn with MLF.
   INTEGER FUNCTION kmm_now()
#if defined key_RK3
      kmm_now = Nbb
#else
      kmm_now = Nnn
#endif
   END FUNCTION kmm_now

   !> After stp_ctl of step kt: step kt of the schedule (puts, then the emulated state, applied).
   SUBROUTINE obn_step( kt, Kmm )
      INTEGER, INTENT(in) ::   kt    !< ocean time-step index
      INTEGER, INTENT(in) ::   Kmm   !< time level of the state after the step (RK3: Nbb, MLF: Nnn)
      REAL(wp) ::   zt0
      LOGICAL  ::   llchg
      zt0 = MPI_Wtime()
      IF( rloop0 < 0._wp )   rloop0 = zt0
      IF( lk_obr ) THEN
         CALL stage( Kmm )
         CALL obr_host_step( kt, llchg )
         lk_obr = obr_host_active()
         IF( llchg ) THEN
            CALL unstage( Kmm )
            CALL report( kt )
         ENDIF
         rn_obr_cpl_time = rn_obr_cpl_time + (MPI_Wtime() - zt0)
      ENDIF
      nloop = nloop + 1
      rloop1 = MPI_Wtime()
   END SUBROUTINE obn_step

   !> Copy the interior of the fields of cn_obr_send at time level Kmm into zst.
   SUBROUTINE stage( Kmm )
      INTEGER, INTENT(in) ::   Kmm   !< time level
      INTEGER ::   jf, ik
      DO jf = 1, nfld
         IF( nkind(jf) == jp_obr_mask )   CYCLE
         ik = obn_field_nlev( nkind(jf) )
         CALL get_state( nkind(jf), Kmm, zst(:,:,1:ik,nkind(jf)) )
      END DO
   END SUBROUTINE stage

   !> Copy zst back into the state at time level Kmm (the host layer changed ocean points only), refresh halos.
   SUBROUTINE unstage( Kmm )
      INTEGER, INTENT(in) ::   Kmm   !< time level to change
      INTEGER ::   jf
      DO jf = 1, nfld
         SELECT CASE( nkind(jf) )
         CASE( jp_obr_sst   )   ;   ts(Nis0:Nie0,Njs0:Nje0,1,jp_tem,Kmm) = zst(:,:,1,jp_obr_sst)
         CASE( jp_obr_sss   )   ;   ts(Nis0:Nie0,Njs0:Nje0,1,jp_sal,Kmm) = zst(:,:,1,jp_obr_sss)
         CASE( jp_obr_ssh   )   ;   ssh(Nis0:Nie0,Njs0:Nje0,Kmm)         = zst(:,:,1,jp_obr_ssh)
         CASE( jp_obr_u     )   ;   uu(Nis0:Nie0,Njs0:Nje0,:,Kmm)        = zst(:,:,:,jp_obr_u)
         CASE( jp_obr_v     )   ;   vv(Nis0:Nie0,Njs0:Nje0,:,Kmm)        = zst(:,:,:,jp_obr_v)
         CASE( jp_obr_tem3d )   ;   ts(Nis0:Nie0,Njs0:Nje0,:,jp_tem,Kmm) = zst(:,:,:,jp_obr_tem3d)
         CASE( jp_obr_sal3d )   ;   ts(Nis0:Nie0,Njs0:Nje0,:,jp_sal,Kmm) = zst(:,:,:,jp_obr_sal3d)
         END SELECT
      END DO
      CALL lbc_lnk( 'obridge_nemo', ts(:,:,:,jp_tem,Kmm), 'T', 1._wp, ts(:,:,:,jp_sal,Kmm), 'T', 1._wp,   &
         &                          uu(:,:,:,Kmm)       , 'U', -1._wp, vv(:,:,:,Kmm)       , 'V', -1._wp )
      CALL lbc_lnk( 'obridge_nemo', ssh(:,:,Kmm), 'T', 1._wp )
   END SUBROUTINE unstage

   !> ocean.output: global ocean min and max of every field just changed by the emulator (a check of the apply).
   SUBROUTINE report( kt )
      INTEGER, INTENT(in) ::   kt    !< step
      INTEGER  ::   jf, ik, ierr
      REAL(wp) ::   zmm(2)
      LOGICAL , ALLOCATABLE ::   llocean(:,:,:)
      DO jf = 1, nfld
         IF( nkind(jf) == jp_obr_mask )   CYCLE
         ik = obn_field_nlev( nkind(jf) )
         SELECT CASE( nkind(jf) )
         CASE( jp_obr_u )   ;   llocean = umask(Nis0:Nie0,Njs0:Nje0,1:ik) > 0.5_wp
         CASE( jp_obr_v )   ;   llocean = vmask(Nis0:Nie0,Njs0:Nje0,1:ik) > 0.5_wp
         CASE DEFAULT       ;   llocean = tmask(Nis0:Nie0,Njs0:Nje0,1:ik) > 0.5_wp
         END SELECT
         zmm = (/ -MINVAL(zst(:,:,1:ik,nkind(jf)), MASK=llocean), MAXVAL(zst(:,:,1:ik,nkind(jf)), MASK=llocean) /)
         CALL MPI_Allreduce( MPI_IN_PLACE, zmm, 2, MPI_DOUBLE_PRECISION, MPI_MAX, mpi_comm_oce, ierr )
         IF( lwp )   WRITE(numout,'(a,a,a,i0,a,2es25.17)') ' obn_step: applied ', TRIM(cp_names(nkind(jf)))//'_emu',   &
            &                                             ' at step ', kt, ': ocean min, max = ', -zmm(1), zmm(2)
      END DO
   END SUBROUTINE report

   !> Copy the interior of one field at time level Kmm into pbuf (Ni_0, Nj_0, nlev).
   SUBROUTINE get_state( kkind, Kmm, pbuf )
      INTEGER , INTENT(in ) ::   kkind         !< jp_obr_sst ... jp_obr_sal3d
      INTEGER , INTENT(in ) ::   Kmm           !< time level
      REAL(wp), INTENT(out) ::   pbuf(:,:,:)   !< interior values
      SELECT CASE( kkind )
      CASE( jp_obr_sst   )   ;   pbuf(:,:,1) = ts (Nis0:Nie0,Njs0:Nje0,1,jp_tem,Kmm)
      CASE( jp_obr_sss   )   ;   pbuf(:,:,1) = ts (Nis0:Nie0,Njs0:Nje0,1,jp_sal,Kmm)
      CASE( jp_obr_ssh   )   ;   pbuf(:,:,1) = ssh(Nis0:Nie0,Njs0:Nje0,Kmm)
      CASE( jp_obr_u     )   ;   pbuf        = uu (Nis0:Nie0,Njs0:Nje0,:,Kmm)
      CASE( jp_obr_v     )   ;   pbuf        = vv (Nis0:Nie0,Njs0:Nje0,:,Kmm)
      CASE( jp_obr_tem3d )   ;   pbuf        = ts (Nis0:Nie0,Njs0:Nje0,:,jp_tem,Kmm)
      CASE( jp_obr_sal3d )   ;   pbuf        = ts (Nis0:Nie0,Njs0:Nje0,:,jp_sal,Kmm)
      END SELECT
   END SUBROUTINE get_state

   !> The host layer's stop: NEMO's ctl_stop (which stops after the step), then the whole coupled job at once.
   SUBROUTINE nemo_stop( cd_msg )
      CHARACTER(len=*), INTENT(in) ::   cd_msg   !< the reason
      lk_obr = .FALSE.
      CALL ctl_stop( TRIM(cd_msg) )
      CALL obr_host_abort( TRIM(cd_msg) )
   END SUBROUTINE nemo_stop

   !> The host layer's warning: ocean.output, and the job's standard output.
   SUBROUTINE nemo_warn( cd_msg )
      CHARACTER(len=*), INTENT(in) ::   cd_msg   !< the warning
      lk_obr = obr_host_active()
      CALL ctl_warn( TRIM(cd_msg) )
      IF( lwp )   WRITE(*,*) TRIM(cd_msg)
   END SUBROUTINE nemo_warn

   !> Before NEMO closes its files: leave the coupled job (MPI itself is finalized by NEMO's mppstop).
   SUBROUTINE obn_finalize()
      IF( lwp .AND. nloop > 1 )   WRITE(numout,'(a,i0,a,es12.5,a,es12.5,a)') ' obn_finalize: ', nloop,   &
         &   ' steps, wall time per step ', (rloop1 - rloop0) / REAL(nloop - 1, wp), ' s, in bridge calls ',   &
         &   rn_obr_cpl_time, ' s'
      IF( .NOT. ll_joined )   RETURN
      CALL obr_host_finalize( ld_mpi = .FALSE. )
      ll_joined = .FALSE.
      lk_obr    = .FALSE.
   END SUBROUTINE obn_finalize

END MODULE obridge_nemo
