!> @file obridge_nemo.F90
!> @brief NEMO adapter of oceanbridge: the &namobridge switches mapped onto the Fortran bridge (module obridge).
!>
!> Five calls, inserted into the configuration's own copies of NEMO routines (nemo_patches/hooks.toml):
!>  - obn_start(comm)  nemo_init, in place of mpp_start's MPI_COMM_WORLD: MPI, then (ln_obridge) obr_init;
!>                     with key_oasis3 NEMO's own cpl_init runs instead and obn_define joins its OASIS component;
!>  - obn_define       nemo_init, after istate_init and before sbc_init (so before NEMO's oasis_enddef): read
!>                     &namobridge, declare the box of interior T points (Nis0:Nie0 x Njs0:Nje0 at 0-based
!>                     offset nimpp-1, njmpp-1 of the Ni0glo x Nj0glo grid) and the fields, end the definitions;
!>  - obn_begin        end of nemo_init: spin-up, then 'mask' and the initial state put at step nit000-1; on
!>                     OASIS (obr_needs_initial_exchange) '<name>_emu' is also got there and discarded, because
!>                     OASIS couples every field at every period from t = 0;
!>  - obn_step(kt,Kmm) after stp_ctl (RK3: Kmm = Nbb, MLF: Kmm = Nnn): put every nn_obr_freq steps, then
!>                     (ln_obr_emulator) get '<name>_emu' every nn_obr_emu_freq steps and apply it;
!>  - obn_finalize     nemo_gcm, before the files are closed.
!> Received values are applied on ocean points only (tmask/umask/vmask) and halos are refreshed by lbc_lnk.
!> A failed bridge call on any rank is known to every rank (min-reduction): ln_obr_required stops the whole
!> job with the bridge's message, otherwise NEMO warns and goes on uncoupled. With the MPI backend no call
!> blocks longer than rn_obr_timeout seconds.
MODULE obridge_nemo
   USE MPI
   USE obridge        ! the oceanbridge Fortran API (bridge/fortran, copied by the installer)
   USE obridge_nemo_nml
   USE oce            ! ts, uu, vv, ssh
   USE dom_oce        ! tmask, umask, vmask, nimpp, njmpp, rn_Dt
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
   LOGICAL  ::   ll_joined = .FALSE.              ! obr_init was called
   INTEGER  ::   nfld = 0                         ! number of fields in cn_obr_send
   INTEGER  ::   nkind(jp_obr_maxfld)  = 0        ! kind (jp_obr_sst...) of each field
   INTEGER  ::   nlev (jp_obr_maxfld)  = 1        ! levels of each field
   INTEGER  ::   id_out(jp_obr_maxfld) = -1, id_emu(jp_obr_maxfld) = -1, id_ini(jp_obr_maxfld) = -1   ! handles
   REAL(wp), ALLOCATABLE ::   zrcv(:,:,:,:)       ! received fields (Ni_0, Nj_0, jpk, nfld)
   REAL(wp), ALLOCATABLE ::   zsnd(:,:,:)         ! send buffer (Ni_0, Nj_0, jpk)
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
      CALL obr_set_timeout( REAL(rn_obr_timeout, 8) )
      CALL obr_init( TRIM(clname), kcomm )        ! stops the job with a message if the launch is wrong
      ll_joined = .TRUE.
      lk_obr    = .TRUE.
   END SUBROUTINE obn_start

   !> In nemo_init before sbc_init: switches, then the partition and fields, and the end of the definitions.
   SUBROUTINE obn_define()
      INTEGER ::   ierr, jf, info, ienddef
#if defined key_obridge_oasis
      CALL obn_nml_read( ierr )
      IF( ierr == 0 .AND. ln_obridge ) THEN        ! join the OASIS component 'oceanx' of NEMO's cpl_init
         CALL obr_init_from_oasis( 'oceanx', ncomp_id, mpi_comm_oce )
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
         IF( ll_joined )   CALL obr_abort( 'nemo: invalid &namobridge switch (see ocean.output: E R R O R)' )
         lk_obr = .FALSE.
         RETURN
      ENDIF
      IF( .NOT. lk_obr )   RETURN
      nfld = 0
      DO jf = 1, jp_obr_maxfld
         IF( LEN_TRIM(cn_obr_send(jf)) == 0 )   CYCLE
         nfld = nfld + 1
         cn_obr_send(nfld) = cn_obr_send(jf)
         nkind(nfld) = obn_field_kind( cn_obr_send(jf) )
         nlev (nfld) = obn_field_nlev( nkind(nfld) )
      END DO
      ALLOCATE( zrcv(Ni_0, Nj_0, jpk, MAX(nfld, 1)), zsnd(Ni_0, Nj_0, jpk) )
      ! stp_ctl already stops the run on NaN before every put: skip the bridge's second scan
      CALL obr_set_nan_policy( 'off' )
      CALL obr_def_time( nit000, REAL(rn_Dt, 8), info )
      IF( info >= 0 )   CALL obr_def_partition( Ni0glo, Nj0glo, nimpp - 1, njmpp - 1, Ni_0, Nj_0, info )
      DO jf = 1, nfld
         IF( info >= 0 )   CALL def_fields( jf, info )
      END DO
      CALL obr_enddef( ienddef )                  ! every rank takes part, even after a definition error
      IF( info >= 0 )   info = ienddef
      CALL obn_check( info, 'end of definitions', nit000 - 1 )
      IF( lwp .AND. lk_obr )   WRITE(numout,'(a,i0,a,i0,a,i0,a,i0,a,i0,a)') ' obn_define: ', nfld, ' field(s) on a ',   &
         &   Ni0glo, ' x ', Nj0glo, ' grid, this rank''s box at offset (', nimpp - 1, ',', njmpp - 1, ')'
   END SUBROUTINE obn_define

   !> End of nemo_init: spin-up (ln_obr_spinup), then the puts of step nit000-1 ('mask' and the initial state).
   SUBROUTINE obn_begin()
      IF( ln_obr_spinup .AND. lk_obr )   CALL spinup()
      IF( lk_obr )   CALL send( nit000 - 1, kmm_now(), .TRUE. )
      CALL discard_initial_emu()
   END SUBROUTINE obn_begin

   !> OASIS couples '<name>_emu' from t = 0 on: get it at step nit000-1 too, and leave the state as it is.
   SUBROUTINE discard_initial_emu()
      LOGICAL ::   ll
      IF( .NOT. (lk_obr .AND. ln_obr_emulator .AND. obr_needs_initial_exchange()) )   RETURN
      ll = receive( id_emu, nit000 - 1, 'initial emulator get (discarded)' )
   END SUBROUTINE discard_initial_emu

   !> Declare field jf: OUT '<name>', and for state fields IN '<name>_emu' and '<name>_init' as switched on.
   SUBROUTINE def_fields( jf, kinfo )
      INTEGER, INTENT(in ) ::   jf      !< field index in cn_obr_send
      INTEGER, INTENT(out) ::   kinfo   !< bridge status
      CHARACTER(len=32) ::   clname
      clname = cn_obr_send(jf)
      CALL obr_def_field( TRIM(clname), OBR_OUT, nlev(jf), id_out(jf), kinfo )
      IF( nkind(jf) == jp_obr_mask )   RETURN
      IF( kinfo >= 0 .AND. ln_obr_emulator )   CALL obr_def_field( TRIM(clname)//'_emu' , OBR_IN, nlev(jf), id_emu(jf), kinfo )
      IF( kinfo >= 0 .AND. ln_obr_spinup   )   CALL obr_def_field( TRIM(clname)//'_init', OBR_IN, nlev(jf), id_ini(jf), kinfo )
   END SUBROUTINE def_fields

   !> Time level of the state after a step: Nbb with RK3 (key_RK3), Nnn with MLF.
   INTEGER FUNCTION kmm_now()
#if defined key_RK3
      kmm_now = Nbb
#else
      kmm_now = Nnn
#endif
   END FUNCTION kmm_now

   !> ln_obr_spinup: receive '<name>_init' at step nit000-1 and replace the initial state (both time levels).
   SUBROUTINE spinup()
      IF( .NOT. receive( id_ini, nit000 - 1, 'spin-up get' ) )   RETURN
      CALL apply( Nbb, .FALSE. )
      IF( Nnn /= Nbb )   CALL apply( Nnn, .FALSE. )
      IF( lwp )   WRITE(numout,'(a,i0)') ' obn_begin: initial state replaced by the received one at step ', nit000 - 1
   END SUBROUTINE spinup

   !> After stp_ctl of step kt: put every nn_obr_freq steps, then apply the emulated state when asked.
   SUBROUTINE obn_step( kt, Kmm )
      INTEGER, INTENT(in) ::   kt    !< ocean time-step index
      INTEGER, INTENT(in) ::   Kmm   !< time level of the state after the step (RK3: Nbb, MLF: Nnn)
      REAL(wp) ::   zt0
      zt0 = MPI_Wtime()
      IF( rloop0 < 0._wp )   rloop0 = zt0
      IF( lk_obr ) THEN
         IF( MOD(kt, nn_obr_freq) == 0 )   CALL send( kt, Kmm, .FALSE. )
         IF( lk_obr .AND. ln_obr_emulator .AND. MOD(kt, nn_obr_emu_freq) == 0 ) THEN
            IF( receive( id_emu, kt, 'emulator get' ) ) THEN
               CALL apply( Kmm, cn_obr_emu_mode == 'increment' )
               CALL report( kt, Kmm )
            ENDIF
         ENDIF
         rn_obr_cpl_time = rn_obr_cpl_time + (MPI_Wtime() - zt0)
      ENDIF
      nloop = nloop + 1
      rloop1 = MPI_Wtime()
   END SUBROUTINE obn_step

   !> Put the fields of step kt ('mask' only with ld_first, at step nit000-1).
   SUBROUTINE send( kt, Kmm, ld_first )
      INTEGER, INTENT(in) ::   kt         !< step of the state
      INTEGER, INTENT(in) ::   Kmm        !< its time level
      LOGICAL, INTENT(in) ::   ld_first   !< .true. at step nit000-1
      INTEGER ::   jf, info, iworst
      iworst = OBR_OK
      DO jf = 1, nfld
         IF( nkind(jf) == jp_obr_mask ) THEN
            IF( .NOT. ld_first )   CYCLE          ! the mask is static: sent once
         ELSEIF( MOD(kt, nn_obr_freq) /= 0 ) THEN
            CYCLE
         ENDIF
         CALL get_state( nkind(jf), Kmm, zsnd(:,:,1:nlev(jf)) )
         CALL obr_put( id_out(jf), kt, zsnd(:,:,1:nlev(jf)), info )
         IF( info < 0 ) THEN
            iworst = info
            EXIT
         ENDIF
      END DO
      CALL obn_check( iworst, 'put', kt )
   END SUBROUTINE send

   !> Get every state field of one kind (kid: id_emu or id_ini) into zrcv; .true. when all ranks got all.
   LOGICAL FUNCTION receive( kid, kt, cd_what )
      INTEGER         , INTENT(in) ::   kid(:)    !< bridge handles, per field (< 0: not received)
      INTEGER         , INTENT(in) ::   kt        !< step
      CHARACTER(len=*), INTENT(in) ::   cd_what   !< for messages
      INTEGER ::   jf, info, iworst
      iworst = OBR_RECVD
      DO jf = 1, nfld
         IF( kid(jf) < 0 )   CYCLE
         CALL obr_get( kid(jf), kt, zrcv(:,:,1:nlev(jf),jf), info )
         IF( info /= OBR_RECVD ) THEN
            iworst = MIN(info, -1)
            EXIT
         ENDIF
      END DO
      CALL obn_check( iworst, cd_what, kt )
      receive = lk_obr
   END FUNCTION receive

   !> Apply zrcv to the state at time level Kmm: replace or add on ocean points, then refresh the halos.
   SUBROUTINE apply( Kmm, ld_inc )
      INTEGER, INTENT(in) ::   Kmm      !< time level to change
      LOGICAL, INTENT(in) ::   ld_inc   !< .true.: increment, .false.: replace
      INTEGER ::   jf
      DO jf = 1, nfld
         SELECT CASE( nkind(jf) )
         CASE( jp_obr_sst   )   ;   CALL blend( ts(Nis0:Nie0,Njs0:Nje0,1:1,jp_tem,Kmm), tmask(Nis0:Nie0,Njs0:Nje0,1:1) )
         CASE( jp_obr_sss   )   ;   CALL blend( ts(Nis0:Nie0,Njs0:Nje0,1:1,jp_sal,Kmm), tmask(Nis0:Nie0,Njs0:Nje0,1:1) )
         CASE( jp_obr_tem3d )   ;   CALL blend( ts(Nis0:Nie0,Njs0:Nje0,:,jp_tem,Kmm)  , tmask(Nis0:Nie0,Njs0:Nje0,:) )
         CASE( jp_obr_sal3d )   ;   CALL blend( ts(Nis0:Nie0,Njs0:Nje0,:,jp_sal,Kmm)  , tmask(Nis0:Nie0,Njs0:Nje0,:) )
         CASE( jp_obr_u     )   ;   CALL blend( uu(Nis0:Nie0,Njs0:Nje0,:,Kmm)         , umask(Nis0:Nie0,Njs0:Nje0,:) )
         CASE( jp_obr_v     )   ;   CALL blend( vv(Nis0:Nie0,Njs0:Nje0,:,Kmm)         , vmask(Nis0:Nie0,Njs0:Nje0,:) )
         CASE( jp_obr_ssh   )   ;   CALL blend2d( ssh(Nis0:Nie0,Njs0:Nje0,Kmm)        , tmask(Nis0:Nie0,Njs0:Nje0,1) )
         END SELECT
      END DO
      CALL lbc_lnk( 'obridge_nemo', ts(:,:,:,jp_tem,Kmm), 'T', 1._wp, ts(:,:,:,jp_sal,Kmm), 'T', 1._wp,   &
         &                          uu(:,:,:,Kmm)       , 'U', -1._wp, vv(:,:,:,Kmm)       , 'V', -1._wp )
      CALL lbc_lnk( 'obridge_nemo', ssh(:,:,Kmm), 'T', 1._wp )
   CONTAINS
      SUBROUTINE blend( px, pmsk )
         REAL(wp), INTENT(inout) ::   px(:,:,:)     !< interior of the state field
         REAL(wp), INTENT(in   ) ::   pmsk(:,:,:)   !< its mask (1 ocean, 0 land)
         INTEGER ::   ik
         ik = SIZE(px, 3)
         IF( ld_inc ) THEN
            WHERE( pmsk > 0.5_wp )   px = px + zrcv(:,:,1:ik,jf)
         ELSE
            WHERE( pmsk > 0.5_wp )   px = zrcv(:,:,1:ik,jf)
         ENDIF
      END SUBROUTINE blend
      SUBROUTINE blend2d( px, pmsk )
         REAL(wp), INTENT(inout) ::   px(:,:)       !< interior of the state field
         REAL(wp), INTENT(in   ) ::   pmsk(:,:)     !< its mask (1 ocean, 0 land)
         IF( ld_inc ) THEN
            WHERE( pmsk > 0.5_wp )   px = px + zrcv(:,:,1,jf)
         ELSE
            WHERE( pmsk > 0.5_wp )   px = zrcv(:,:,1,jf)
         ENDIF
      END SUBROUTINE blend2d
   END SUBROUTINE apply

   !> ocean.output: global ocean min and max of every field just changed by the emulator (a check of the apply).
   SUBROUTINE report( kt, Kmm )
      INTEGER, INTENT(in) ::   kt    !< step
      INTEGER, INTENT(in) ::   Kmm   !< time level that was changed
      INTEGER  ::   jf, ik, ierr
      REAL(wp) ::   zmm(2)
      LOGICAL , ALLOCATABLE ::   llocean(:,:,:)
      DO jf = 1, nfld
         IF( id_emu(jf) < 0 )   CYCLE
         ik = nlev(jf)
         CALL get_state( nkind(jf), Kmm, zsnd(:,:,1:ik) )
         SELECT CASE( nkind(jf) )
         CASE( jp_obr_u )   ;   llocean = umask(Nis0:Nie0,Njs0:Nje0,1:ik) > 0.5_wp
         CASE( jp_obr_v )   ;   llocean = vmask(Nis0:Nie0,Njs0:Nje0,1:ik) > 0.5_wp
         CASE DEFAULT       ;   llocean = tmask(Nis0:Nie0,Njs0:Nje0,1:ik) > 0.5_wp
         END SELECT
         zmm = (/ -MINVAL(zsnd(:,:,1:ik), MASK=llocean), MAXVAL(zsnd(:,:,1:ik), MASK=llocean) /)
         CALL MPI_Allreduce( MPI_IN_PLACE, zmm, 2, MPI_DOUBLE_PRECISION, MPI_MAX, mpi_comm_oce, ierr )
         IF( lwp )   WRITE(numout,'(a,a,a,i0,a,2es25.17)') ' obn_step: applied ', TRIM(cn_obr_send(jf))//'_emu',   &
            &                                             ' at step ', kt, ': ocean min, max = ', -zmm(1), zmm(2)
      END DO
   END SUBROUTINE report

   !> Copy the interior of one field at time level Kmm into pbuf (Ni_0, Nj_0, nlev).
   SUBROUTINE get_state( kkind, Kmm, pbuf )
      INTEGER , INTENT(in ) ::   kkind         !< jp_obr_sst ... jp_obr_mask
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
      CASE( jp_obr_mask  )   ;   pbuf        = tmask(Nis0:Nie0,Njs0:Nje0,:)
      END SELECT
   END SUBROUTINE get_state

   !> Make every rank agree on a bridge call's status; stop (ln_obr_required) or go on uncoupled.
   SUBROUTINE obn_check( kinfo, cd_what, kt )
      INTEGER         , INTENT(in) ::   kinfo     !< this rank's status (< 0: failed)
      CHARACTER(len=*), INTENT(in) ::   cd_what   !< which call
      INTEGER         , INTENT(in) ::   kt        !< step
      INTEGER ::   iv(2), ierr
      CHARACTER(len=512) ::   clmsg
      iv = (/ kinfo, -1 /)
      IF( kinfo < 0 )   iv(2) = narea - 1
      CALL MPI_Allreduce( MPI_IN_PLACE, iv(1:1), 1, MPI_INTEGER, MPI_MIN, mpi_comm_oce, ierr )
      CALL MPI_Allreduce( MPI_IN_PLACE, iv(2:2), 1, MPI_INTEGER, MPI_MAX, mpi_comm_oce, ierr )
      IF( iv(1) >= 0 )   RETURN
      IF( kinfo < 0 )   WRITE(*,'(a,i0,a)') ' nemo rank ', narea - 1, ': bridge: '//TRIM(obr_last_error())
      WRITE(clmsg,'(a,a,a,i0,a,i0,a)') 'oceanbridge: ', cd_what, ' failed at step ', kt, ' (first failing rank ',   &
         &                             iv(2), '): '//TRIM(cause(iv(1)))
      lk_obr = .FALSE.
      IF( ln_obr_required ) THEN
         CALL ctl_stop( TRIM(clmsg), 'stopping because ln_obr_required = .true.' )
         CALL obr_abort( 'nemo: '//TRIM(clmsg)//'; stopping because ln_obr_required = .true.' )
      ELSE
         CALL ctl_warn( TRIM(clmsg), 'ln_obr_required = .false.: continuing UNCOUPLED' )
         IF( lwp )   WRITE(*,*) TRIM(clmsg)//'; ln_obr_required = .false.: continuing UNCOUPLED'
      ENDIF
   END SUBROUTINE obn_check

   !> Why a bridge call failed, from its (worst) status code.
   CHARACTER(len=96) FUNCTION cause( kinfo )
      INTEGER, INTENT(in) ::   kinfo   !< status < 0
      SELECT CASE( kinfo )
      CASE( OBR_ERR_TIMEOUT )   ;   cause = 'the worker is absent, dead or slower than rn_obr_timeout'
      CASE( OBR_ERR_DEF     )   ;   cause = 'NEMO and the worker define the fields differently (bridge message above)'
      CASE DEFAULT              ;   cause = 'bridge error (message above)'
      END SELECT
   END FUNCTION cause

   !> Before NEMO closes its files: leave the coupled job (MPI itself is finalized by NEMO's mppstop).
   SUBROUTINE obn_finalize()
      INTEGER ::   info
      IF( lwp .AND. nloop > 1 )   WRITE(numout,'(a,i0,a,es12.5,a,es12.5,a)') ' obn_finalize: ', nloop,   &
         &   ' steps, wall time per step ', (rloop1 - rloop0) / REAL(nloop - 1, wp), ' s, in bridge calls ',   &
         &   rn_obr_cpl_time, ' s'
      IF( .NOT. ll_joined )   RETURN
      IF( .NOT. lk_obr )   CALL obr_set_timeout( 1._8 )   ! the worker is gone: do not wait on its sends
      CALL obr_finalize( info )
      IF( info < 0 )   CALL ctl_warn( 'oceanbridge: obr_finalize: '//TRIM(obr_last_error()) )
      ll_joined = .FALSE.
      lk_obr    = .FALSE.
   END SUBROUTINE obn_finalize

END MODULE obridge_nemo
