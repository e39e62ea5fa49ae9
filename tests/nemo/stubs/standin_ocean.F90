!> A stand-in NEMO time loop around the adapter (nemo_patches/obridge_nemo.F90), for CI without NEMO.
!> Grid nx x ny x nz (from &namstandin of namelist_cfg), split in j over the ranks, halos of nn_hls points.
!> State at global interior point (i,j,k), 1-based: T = i + 100 j + 10000 k, S = -T, u = T/2, v = T/4,
!> ssh = i + 100 j; every step adds 1 to the whole state; land (masks 0) is the column i = 1.
PROGRAM standin_ocean
   USE MPI
   USE par_oce
   USE dom_oce
   USE oce
   USE in_out_manager
   USE lib_mpp
   USE obridge_nemo
   IMPLICIT NONE
   INTEGER ::   icomm, irank, isize, ierr, kt, nx = 12, ny = 10, nz = 3, nn_it000 = 1, nn_itend = 4
   LOGICAL ::   ln_xios = .FALSE.                  ! as NEMO's key_xios branch: no obn_start
   NAMELIST/namstandin/ nx, ny, nz, ln_xios
   NAMELIST/namrun/ nn_it000, nn_itend

   numnam_cfg = load( 'namelist_cfg' )
   READ( numnam_cfg(MAX(INDEX(numnam_cfg, '&namstandin '), 1):), namstandin, IOSTAT=ierr )
   IF( ln_xios ) THEN
      CALL MPI_Init( ierr )
      icomm = MPI_COMM_WORLD
   ELSE
      CALL obn_start( icomm )
   ENDIF
   mpi_comm_oce = icomm
   CALL MPI_Comm_rank( icomm, irank, ierr )
   CALL MPI_Comm_size( icomm, isize, ierr )
   numnam_ref = load( 'namelist_ref' )
   READ( numnam_cfg(MAX(INDEX(numnam_cfg, '&namrun '), 1):), namrun, IOSTAT=ierr )
   narea = irank + 1   ;   lwp = narea == 1   ;   lwm = lwp
   nit000 = nn_it000   ;   nitend = nn_itend
   CALL decompose( irank, isize )
   CALL obn_define
   CALL obn_begin
   DO kt = nit000, nitend
      IF( nstop /= 0 )   EXIT
      ts = ts + 1._wp   ;   uu = uu + 1._wp   ;   vv = vv + 1._wp   ;   ssh = ssh + 1._wp
      CALL obn_step( kt, Nbb )
   END DO
   CALL obn_finalize
   IF( lwp )   WRITE(*,'(a,i0,a)') ' standin_ocean: done, nstop = ', nstop, ' error(s)'
   CALL MPI_Finalize( ierr )

CONTAINS

   !> This rank's j-band of the grid, the state and the masks.
   SUBROUTINE decompose( krank, ksize )
      INTEGER, INTENT(in) ::   krank, ksize   !< rank and number of ranks
      INTEGER ::   ji, jj, jk
      REAL(wp) ::   zt
      Ni0glo = nx   ;   Nj0glo = ny   ;   jpk = nz
      jpni = 1   ;   jpnj = ksize   ;   jpnij = ksize   ! no land subdomain removed
      Ni_0 = nx   ;   Nj_0 = ny / ksize + MERGE(1, 0, krank < MOD(ny, ksize))
      nimpp = 1   ;   njmpp = 1 + krank * (ny / ksize) + MIN(krank, MOD(ny, ksize))
      Nis0 = 1 + nn_hls   ;   Nie0 = Nis0 + Ni_0 - 1   ;   Njs0 = 1 + nn_hls   ;   Nje0 = Njs0 + Nj_0 - 1
      jpi = Ni_0 + 2 * nn_hls   ;   jpj = Nj_0 + 2 * nn_hls
      ALLOCATE( ts(jpi,jpj,jpk,jpts,3), uu(jpi,jpj,jpk,3), vv(jpi,jpj,jpk,3), ssh(jpi,jpj,3) )
      ALLOCATE( tmask(jpi,jpj,jpk), umask(jpi,jpj,jpk), vmask(jpi,jpj,jpk) )
      DO jk = 1, jpk
         DO jj = 1, jpj
            DO ji = 1, jpi
               zt = REAL(ji - Nis0 + nimpp, wp) + 100._wp * REAL(jj - Njs0 + njmpp, wp) + 10000._wp * jk
               ts(ji,jj,jk,jp_tem,:) = zt   ;   ts(ji,jj,jk,jp_sal,:) = -zt
               uu(ji,jj,jk,:) = 0.5_wp * zt   ;   vv(ji,jj,jk,:) = 0.25_wp * zt
               ssh(ji,jj,:) = REAL(ji - Nis0 + nimpp, wp) + 100._wp * REAL(jj - Njs0 + njmpp, wp)
               tmask(ji,jj,jk) = MERGE(0._wp, 1._wp, ji - Nis0 + nimpp == 1)
            END DO
         END DO
      END DO
      umask = tmask   ;   vmask = tmask
   END SUBROUTINE decompose

   !> A namelist file as one line, comments removed (as NEMO's load_nml does).
   FUNCTION load( cdfile ) RESULT( cdbuf )
      CHARACTER(len=*), INTENT(in) ::   cdfile   !< file name
      CHARACTER(LEN=:), ALLOCATABLE ::   cdbuf
      CHARACTER(len=512) ::   clline
      INTEGER ::   inum, ios, ic
      cdbuf = ''
      OPEN( NEWUNIT=inum, FILE=cdfile, STATUS='old', ACTION='read' )
      DO
         READ( inum, '(a)', IOSTAT=ios ) clline
         IF( ios /= 0 )   EXIT
         ic = INDEX(clline, '!')
         IF( ic > 0 )   clline = clline(1:ic-1)
         IF( LEN_TRIM(clline) > 0 )   cdbuf = cdbuf//TRIM(clline)//' '
      END DO
      CLOSE( inum )
   END FUNCTION load

END PROGRAM standin_ocean
